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
  if (o.num_ops < 1) return {"num_ops", "must be >= 1"};
  if (!(o.max_level > 0) || !std::isfinite(o.max_level)) return {"max_level", "must be > 0"};
  if (fixmatch && (o.max_level < 2 || o.max_level != std::floor(o.max_level)))
    return {"max_level", "must be an integer >= 2 with variant \"fixmatch\" (levels are 1 .. max_level - 1)"};
  if (!fixmatch && !(o.magnitude >= 0 && o.magnitude <= o.max_level)) return {"magnitude", "must be in [0, max_level]"};
  if (!(o.magnitude_std >= 0) || !std::isfinite(o.magnitude_std)) return {"magnitude_std", "must be >= 0"};
  if (!(o.prob >= 0 && o.prob <= 1)) return {"prob", "must be a probability in [0, 1]"};
  return {"", ""};
}

}  // namespace

RandAugmentOptions RandAugmentOptions::from_config(const ConfigSection& s) {
  RandAugmentOptions o;
  o.variant = s.get_choice("variant", o.variant, {"reference", "fixmatch"});
  const bool fixmatch = o.variant == "fixmatch";
  if (fixmatch)
    for (const char* key : {"magnitude", "magnitude_std"})
      if (s.has(key)) s.fail(key, "is not used by variant \"fixmatch\" (its levels are drawn uniformly); remove it");
  o.num_ops = s.get_or("num_ops", fixmatch ? 2 : o.num_ops);
  o.magnitude = s.get_or("magnitude", o.magnitude);
  o.magnitude_std = s.get_or("magnitude_std", o.magnitude_std);
  o.max_level = s.get_or("max_level", o.max_level);
  o.prob = s.get_or("prob", o.prob);
  const auto [key, message] = first_problem(o);
  if (!key.empty()) s.fail(key, message);
  return o;
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
  for (int i = 0; i < options_.num_ops; ++i) {
    RandAugmentStep step;
    step.op = static_cast<int>(rng.below(names_.size()));
    if (fixmatch_) step.level = 1.0 + static_cast<double>(rng.below(static_cast<uint64_t>(options_.max_level) - 1));
    step.applied = rng.bernoulli(options_.prob);
    if (step.applied) {
      if (!fixmatch_) {
        step.level = options_.magnitude;
        if (options_.magnitude_std > 0)
          step.level = std::clamp(step.level + options_.magnitude_std * rng.normal(), 0.0, options_.max_level);
      }
      if (is_signed(step.op)) step.negated = rng.bernoulli(0.5);
      apply_op(image, step.op, step.level, step.negated);
    }
    if (steps) steps->push_back(step);
  }
}

}  // namespace sscl
