#include "datasets/augment_pipeline.h"

#include <cmath>
#include <sstream>

#include "datasets/transforms.h"

namespace sscl {

void AugmentOptions::declare(OptionSpec<AugmentOptions>& o) {
  using O = AugmentOptions;
  o.key("crop_padding", &O::crop_padding, "random crop after zero padding by this many pixels (0: off)").min(0);
  // NaN passes, as it did before the options were declared.
  o.key("hflip", &O::hflip, "horizontal flip probability")
      .check([](double p) { return !(p < 0 || p > 1); }, "must be a probability in [0, 1]");
  o.key("strong", &O::strong, "strong view: crop, flip, RandAugment, Cutout; none drops RandAugment")
      .one_of({"randaugment", "none"});
  o.section("randaugment", &O::randaugment, "RandAugment of the strong view");
  o.key("strong_cutout", &O::strong_cutout, "Cutout side of the strong view in pixels (fixed mode); 0: no Cutout")
      .min(0);
  o.key("strong_cutout_mode", &O::strong_cutout_mode,
        "fixed (the reference) or random (FixMatch: side uniform up to half the image)")
      .one_of({"fixed", "random"});
}

std::string AugmentOptions::describe_strong() const {
  std::ostringstream text;
  text << "crop (padding " << crop_padding << "), flip (p " << hflip << ")";
  const RandAugmentOptions& ra = randaugment;
  if (strong == "randaugment" && ra.variant == "fixmatch")
    text << ", RandAugment (fixmatch: " << ra.ops() << " ops, random level, p " << ra.prob << ")";
  else if (strong == "randaugment")
    text << ", RandAugment (" << ra.variant << ": " << ra.ops() << " ops, level " << ra.level() << " of "
         << ra.max_level << " std " << ra.level_std() << ", p " << ra.prob << ")";
  if (strong_cutout > 0 && strong_cutout_mode == "random") text << ", Cutout of random side up to half the image";
  if (strong_cutout > 0 && strong_cutout_mode == "fixed") text << ", Cutout " << strong_cutout << "x" << strong_cutout;
  return text.str();
}

AugmentPipeline::AugmentPipeline(AugmentOptions options, std::vector<double> mean, std::vector<double> std)
    : options_(std::move(options)), mean_(std::move(mean)), std_(std::move(std)) {
  for (size_t c = 0; c < mean_.size() && c < 4; ++c) fill_[static_cast<int>(c)] = std::round(mean_[c]);
  if (options_.strong == "randaugment") rand_augment_.emplace(options_.randaugment, fill_);
}

cv::Mat AugmentPipeline::weak(const cv::Mat& image, Rng& rng) const {
  cv::Mat out = random_crop(image, options_.crop_padding, rng);
  random_hflip(out, options_.hflip, rng);
  return out;
}

cv::Mat AugmentPipeline::strong(const cv::Mat& image, Rng& rng) const {
  cv::Mat out = weak(image, rng);
  if (rand_augment_) rand_augment_->apply(out, rng);
  if (options_.strong_cutout > 0 && options_.strong_cutout_mode == "random")
    random_size_cutout(out, 0.5, fill_, rng);
  else
    cutout(out, options_.strong_cutout, fill_, rng);
  return out;
}

void AugmentPipeline::normalize(const cv::Mat& image, float* chw) const { normalize_to_chw(image, mean_, std_, chw); }

}  // namespace sscl
