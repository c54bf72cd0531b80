// The per-sample views of a Split-Semi batch, as the reference builds them:
// labeled and weak views are crop + flip; the strong view is the same, then
// RandAugment, then Cutout. Every view is then normalised to float CHW.
// Randomness comes only from the Rng passed in, so a sample's views depend on
// the seed of its slot alone, whatever thread builds it.
#pragma once

#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/options.h"
#include "core/random.h"
#include "datasets/rand_augment.h"

namespace sscl {

struct AugmentOptions {
  int crop_padding = 4;                      // random crop after padding by this many pixels (0: off)
  double hflip = 0.5;                        // horizontal flip probability
  std::string strong = "randaugment";        // "randaugment" | "none" (crop + flip + Cutout only)
  RandAugmentOptions randaugment;            // data.augment.randaugment.*
  int strong_cutout = 5;                     // side in pixels in "fixed" mode; 0: no Cutout in either mode
  std::string strong_cutout_mode = "fixed";  // "fixed" (reference) | "random" (FixMatch: side up to half the image)

  static void declare(OptionSpec<AugmentOptions>& o);  // data.augment
  std::string describe_strong() const;                 // one line for the log
};

class AugmentPipeline {
 public:
  // mean/std: per channel on the 0..255 scale; the rounded mean is also the fill
  // of Cutout and of RandAugment's geometric operations.
  AugmentPipeline(AugmentOptions options, std::vector<double> mean, std::vector<double> std);

  cv::Mat weak(const cv::Mat& image, Rng& rng) const;
  // No crop and no flip: the weak view is the image unchanged (what it draws moves
  // only the generator, so a caller that draws nothing after it may skip it).
  bool weak_is_identity() const { return options_.crop_padding <= 0 && options_.hflip <= 0; }
  cv::Mat strong(const cv::Mat& image, Rng& rng) const;
  void normalize(const cv::Mat& image, float* chw) const;

  const AugmentOptions& options() const { return options_; }

 private:
  AugmentOptions options_;
  std::vector<double> mean_, std_;
  cv::Scalar fill_;
  std::optional<RandAugment> rand_augment_;
};

}  // namespace sscl
