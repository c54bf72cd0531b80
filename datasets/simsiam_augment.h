// The views of self-supervised pretraining (tools/pretrain): the augmentation of
// SimSiam's CIFAR experiments (and MoCo v2 / SimCLR before it), as torchvision
// composes it: RandomResizedCrop (scale [0.2, 1], ratio [3/4, 4/3], bilinear),
// horizontal flip, ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8, RandomGrayscale
// p 0.2. No Gaussian blur, as in SimSiam's CIFAR setting. On gray images the
// saturation, hue and grayscale steps change nothing.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "core/options.h"
#include "core/random.h"

namespace sscl {

struct SimSiamAugmentOptions {
  std::vector<double> crop_scale{0.2, 1.0};          // area fraction of the random resized crop
  std::vector<double> crop_ratio{3.0 / 4, 4.0 / 3};  // aspect ratio range (width / height)
  double hflip = 0.5;
  std::vector<double> color_jitter{0.4, 0.4, 0.4, 0.1};  // brightness, contrast, saturation, hue
  double color_jitter_p = 0.8;
  double grayscale_p = 0.2;

  static void declare(OptionSpec<SimSiamAugmentOptions>& o);  // pretrain.augment
  std::string describe() const;                               // one line for the log
};

// torchvision's RandomResizedCrop: up to 10 draws of an area fraction in
// `scale` and a log-uniform aspect ratio in `ratio` until the box fits, else the
// centre crop of the clamped ratio; the box is resized (bilinear) to the
// image's size.
cv::Mat random_resized_crop(const cv::Mat& image, double scale_min, double scale_max, double ratio_min,
                            double ratio_max, Rng& rng);

// torchvision's adjust_hue: the hue moved by `shift` of a full turn (-0.5..0.5)
// in HSV; identity on gray images.
cv::Mat adjust_hue(const cv::Mat& image, double shift);

// torchvision's ColorJitter: brightness, contrast, saturation and hue in a
// random order, each factor uniform in [max(0, 1 - s), 1 + s] (hue: [-h, h]).
cv::Mat color_jitter(const cv::Mat& image, const std::vector<double>& strength, Rng& rng);

// One augmented view of a uint8 H x W x C image.
cv::Mat simsiam_view(const cv::Mat& image, const SimSiamAugmentOptions& options, Rng& rng);

// uint8 [N, H, W, C] -> uint8 [N, H, W, C]: each image through simsiam_view,
// with the generator of stream_seed(seed, "pretrain.view", i), in parallel.
at::Tensor simsiam_views(const at::Tensor& raw, const SimSiamAugmentOptions& options, uint64_t seed);

}  // namespace sscl
