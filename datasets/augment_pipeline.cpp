#include "datasets/augment_pipeline.h"

#include <cmath>
#include <sstream>

#include "datasets/transforms.h"

namespace sscl {

AugmentOptions AugmentOptions::from_config(const ConfigSection& a) {
  AugmentOptions o;
  o.crop_padding = a.get_or("crop_padding", o.crop_padding);
  o.hflip = a.get_or("hflip", o.hflip);
  o.strong = a.get_choice("strong", o.strong, {"randaugment", "none"});
  o.randaugment = RandAugmentOptions::from_config(a.section("randaugment"));
  o.strong_cutout = a.get_or("strong_cutout", o.strong_cutout);
  o.strong_cutout_mode = a.get_choice("strong_cutout_mode", o.strong_cutout_mode, {"fixed", "random"});
  if (o.crop_padding < 0) a.fail("crop_padding", "must be >= 0");
  if (o.hflip < 0 || o.hflip > 1) a.fail("hflip", "must be a probability in [0, 1]");
  if (o.strong_cutout < 0) a.fail("strong_cutout", "must be >= 0");
  return o;
}

std::string AugmentOptions::describe_strong() const {
  std::ostringstream text;
  text << "crop (padding " << crop_padding << "), flip (p " << hflip << ")";
  const RandAugmentOptions& ra = randaugment;
  if (strong == "randaugment" && ra.variant == "fixmatch")
    text << ", RandAugment (fixmatch: " << ra.num_ops << " ops, random level, p " << ra.prob << ")";
  else if (strong == "randaugment")
    text << ", RandAugment (" << ra.variant << ": " << ra.num_ops << " ops, level " << ra.magnitude << " of "
         << ra.max_level << " std " << ra.magnitude_std << ", p " << ra.prob << ")";
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
