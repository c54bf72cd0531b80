#include "datasets/rand_augment.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/error.h"
#include "datasets/augment_ops.h"

namespace sscl {

enum class AugmentKind : int {
  AutoContrast,
  Equalize,
  Invert,
  Identity,
  Rotate,
  Posterize,
  Solarize,
  SolarizeAdd,
  Color,
  Contrast,
  Brightness,
  Sharpness,
  ShearX,
  ShearY,
  TranslateX,
  TranslateY,
};

namespace {

using K = AugmentKind;

const std::vector<std::pair<std::string, K>>& pool(bool fixmatch) {
  static const std::vector<std::pair<std::string, K>> reference = {{"AutoContrast", K::AutoContrast},
                                                                   {"Equalize", K::Equalize},
                                                                   {"Invert", K::Invert},
                                                                   {"Rotate", K::Rotate},
                                                                   {"Posterize", K::Posterize},
                                                                   {"Solarize", K::Solarize},
                                                                   {"SolarizeAdd", K::SolarizeAdd},
                                                                   {"Color", K::Color},
                                                                   {"Contrast", K::Contrast},
                                                                   {"Brightness", K::Brightness},
                                                                   {"Sharpness", K::Sharpness},
                                                                   {"ShearX", K::ShearX},
                                                                   {"ShearY", K::ShearY},
                                                                   {"TranslateX", K::TranslateX},
                                                                   {"TranslateY", K::TranslateY}};
  static const std::vector<std::pair<std::string, K>> fixmatch_pool = {{"AutoContrast", K::AutoContrast},
                                                                       {"Brightness", K::Brightness},
                                                                       {"Color", K::Color},
                                                                       {"Contrast", K::Contrast},
                                                                       {"Equalize", K::Equalize},
                                                                       {"Identity", K::Identity},
                                                                       {"Posterize", K::Posterize},
                                                                       {"Rotate", K::Rotate},
                                                                       {"Sharpness", K::Sharpness},
                                                                       {"ShearX", K::ShearX},
                                                                       {"ShearY", K::ShearY},
                                                                       {"Solarize", K::Solarize},
                                                                       {"TranslateX", K::TranslateX},
                                                                       {"TranslateY", K::TranslateY}};
  return fixmatch ? fixmatch_pool : reference;
}

bool is_enhance(K k) { return k == K::Color || k == K::Contrast || k == K::Brightness || k == K::Sharpness; }

// The first invalid option as {key, message}; {"", ""} when all are valid.
std::pair<std::string, std::string> first_problem(const RandAugmentOptions& o) {
  const bool fixmatch = o.variant == "fixmatch";
  if (o.variant != "reference" && !fixmatch) return {"variant", "must be one of: reference, fixmatch"};
  if (o.ops() < 1) return {"num_ops", "must be >= 1"};
  if (!(o.max_level > 0) || !std::isfinite(o.max_level)) return {"max_level", "must be > 0"};
  if (fixmatch && (o.max_level < 2 || o.max_level != std::floor(o.max_level)))
    return {"max_level", "must be an integer >= 2 with variant \"fixmatch\" (levels are 1 .. max_level - 1)"};
  if (!fixmatch && !(o.level() >= 0 && o.level() <= o.max_level)) return {"magnitude", "must be in [0, max_level]"};
  if (!(o.level_std() >= 0) || !std::isfinite(o.level_std())) return {"magnitude_std", "must be >= 0"};
  if (!(o.prob >= 0 && o.prob <= 1)) return {"prob", "must be a probability in [0, 1]"};
  return {"", ""};
}

}  // namespace

void RandAugmentOptions::declare(OptionSpec<RandAugmentOptions>& o) {
  using O = RandAugmentOptions;
  o.key("variant", &O::variant, "reference (timm's increasing ops, mmcls) or fixmatch (kekmodel's RandAugmentMC)")
      .one_of({"reference", "fixmatch"});
  o.key("num_ops", &O::num_ops, "ops per image (default 3; 2 with variant fixmatch)").min(1);
  o.key("magnitude", &O::magnitude, "level of max_level (default 7; variant reference only)");
  // magnitude and magnitude_std are checked by the rule, after the refusal of
  // either with variant "fixmatch".
  o.key("magnitude_std", &O::magnitude_std,
        "gaussian noise on the level per op, clipped to [0, max_level] (default 0.5; variant reference only)");
  o.key("max_level", &O::max_level, "the top level (fixmatch: an integer >= 2, levels 1 .. max_level - 1)")
      .check([](double v) { return v > 0 && std::isfinite(v); }, "must be > 0");
  o.key("prob", &O::prob, "each chosen op applied with this probability")
      .check([](double p) { return p >= 0 && p <= 1; }, "must be a probability in [0, 1]");
  o.rule([](const O& v, const ConfigSection& s) {
    const bool fixmatch = v.variant == "fixmatch";
    if (fixmatch)
      for (const char* key : {"magnitude", "magnitude_std"})
        if (s.has(key)) s.fail(key, "is not used by variant \"fixmatch\" (its levels are drawn uniformly); remove it");
    const auto [key, message] = first_problem(v);
    if (!key.empty()) s.fail(key, message);
    // The variant's defaults are recorded for the resolved config (fixmatch has
    // no magnitude: none is written, so that the file loads again).
    if (!v.num_ops) s.config().record_default(s.full_key("num_ops"), static_cast<int64_t>(v.ops()));
    if (fixmatch) return;
    if (!v.magnitude) s.config().record_default(s.full_key("magnitude"), v.level());
    if (!v.magnitude_std) s.config().record_default(s.full_key("magnitude_std"), v.level_std());
  });
}

RandAugment::RandAugment(RandAugmentOptions options, cv::Scalar fill)
    : options_(std::move(options)), fill_(fill), fixmatch_(options_.variant == "fixmatch") {
  const auto [key, message] = first_problem(options_);
  if (!key.empty()) throw Error("RandAugmentOptions." + key + " " + message);
  for (const auto& [name, kind] : pool(fixmatch_)) {
    names_.push_back(name);
    kinds_.push_back(kind);
  }
}

int RandAugment::op_index(const std::string& name) const {
  const auto it = std::find(names_.begin(), names_.end(), name);
  return it == names_.end() ? -1 : static_cast<int>(it - names_.begin());
}

bool RandAugment::is_signed(int op) const {
  const K k = kinds_.at(op);
  return k == K::Rotate || k == K::ShearX || k == K::ShearY || k == K::TranslateX || k == K::TranslateY ||
         (!fixmatch_ && is_enhance(k));
}

double RandAugment::argument(int op, double level, bool negated) const {
  const K k = kinds_.at(op);
  const double sign = negated && is_signed(op) ? -1.0 : 1.0;
  if (fixmatch_) {
    // kekmodel: _float_parameter = v * max_v / 10, _int_parameter = int(v * max_v / 10).
    auto scaled = [&](double range) { return level * range / options_.max_level; };
    switch (k) {
      case K::Color:
      case K::Contrast:
      case K::Brightness:
      case K::Sharpness: return scaled(0.9) + 0.05;
      case K::Posterize: return std::trunc(scaled(4)) + 4;
      case K::Rotate: return sign * std::trunc(scaled(30));
      case K::Solarize: return 256 - std::trunc(scaled(256));
      case K::ShearX:
      case K::ShearY: return sign * scaled(0.3);
      case K::TranslateX:
      case K::TranslateY: return sign * scaled(0.3);
      default: return 0;
    }
  }
  const double t = level / options_.max_level;  // timm: (level / _LEVEL_DENOM) * range
  switch (k) {
    case K::Rotate: return sign * (t * 30);
    case K::Posterize: return 4 - std::trunc(t * 4);
    case K::Solarize: return 256 - std::trunc(t * 256);
    case K::SolarizeAdd: return std::trunc(t * 110);
    case K::Color:
    case K::Contrast:
    case K::Brightness:
    case K::Sharpness: return 1 + sign * (t * 0.9);
    case K::ShearX:
    case K::ShearY: return sign * (t * 0.3);
    case K::TranslateX:
    case K::TranslateY: return sign * (t * 0.45);
    default: return 0;
  }
}

void RandAugment::apply_op(cv::Mat& image, int op, double level, bool negated) const {
  const double arg = argument(op, level, negated);
  // Fractional pixels for the reference (timm, mmcls); whole pixels for kekmodel's int().
  auto pixels = [&](int size) { return fixmatch_ ? std::trunc(arg * size) : arg * size; };
  switch (kinds_.at(op)) {
    case K::AutoContrast: image = auto_contrast(image); break;
    case K::Equalize: image = equalize(image); break;
    case K::Invert: image = invert(image); break;
    case K::Identity: break;
    case K::Rotate: image = rotate(image, arg, fill_); break;
    case K::Posterize: image = posterize(image, static_cast<int>(arg)); break;
    case K::Solarize: image = solarize(image, static_cast<int>(arg)); break;
    case K::SolarizeAdd: image = solarize_add(image, static_cast<int>(arg)); break;
    case K::Color: image = color(image, arg); break;
    case K::Contrast: image = contrast(image, arg); break;
    case K::Brightness: image = brightness(image, arg); break;
    case K::Sharpness: image = sharpness(image, arg); break;
    case K::ShearX: image = shear_x(image, arg, fill_); break;
    case K::ShearY: image = shear_y(image, arg, fill_); break;
    case K::TranslateX: image = translate_x(image, pixels(image.cols), fill_); break;
    case K::TranslateY: image = translate_y(image, pixels(image.rows), fill_); break;
  }
}

void RandAugment::apply(cv::Mat& image, Rng& rng, std::vector<RandAugmentStep>* steps) const {
  const int num_ops = options_.ops();
  for (int i = 0; i < num_ops; ++i) {
    RandAugmentStep step;
    step.op = static_cast<int>(rng.below(names_.size()));
    if (fixmatch_) step.level = 1.0 + static_cast<double>(rng.below(static_cast<uint64_t>(options_.max_level) - 1));
    step.applied = rng.bernoulli(options_.prob);
    if (step.applied) {
      if (!fixmatch_) {
        step.level = options_.level();
        if (options_.level_std() > 0)
          step.level = std::clamp(step.level + options_.level_std() * rng.normal(), 0.0, options_.max_level);
      }
      if (is_signed(step.op)) step.negated = rng.bernoulli(0.5);
      apply_op(image, step.op, step.level, step.negated);
    }
    if (steps) steps->push_back(step);
  }
}

}  // namespace sscl
