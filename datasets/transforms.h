// Per-image augmentations on uint8 HxWxC images (OpenCV). Each takes its own Rng,
// so a sample's views depend only on the seed of its slot in the batch.
//
// The weak view is crop + flip; the strong view adds RandAugment
// (datasets/rand_augment.h) and Cutout.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <vector>

#include "core/random.h"

namespace sscl {

// Pads by `padding` pixels of 0 on every side, then crops the original size at a
// uniformly random offset (torchvision's RandomCrop(size, padding)).
cv::Mat random_crop(const cv::Mat& image, int padding, Rng& rng);

// Mirrors left-right with probability p, in place.
void random_hflip(cv::Mat& image, double p, Rng& rng);

// Fills a size x size square centred on a uniformly random pixel (clipped at the
// borders) with `fill`, in place.
void cutout(cv::Mat& image, int size, const cv::Scalar& fill, Rng& rng);

// Cutout with FixMatch's random size: a square of side uniform in
// [1, max_fraction * min(rows, cols)] (FixMatch uses 0.5), then as cutout().
void random_size_cutout(cv::Mat& image, double max_fraction, const cv::Scalar& fill, Rng& rng);

// Resizes to rows x cols: area averaging when shrinking (no aliasing), bicubic
// when enlarging.
cv::Mat resize(const cv::Mat& image, int rows, int cols);

// Rotates by `degrees` (counter-clockwise) about the centre, bilinear, zeros
// outside: the Rotated MNIST family's transform.
cv::Mat rotate(const cv::Mat& image, double degrees);

// Output pixel i is input pixel order[i] (row-major over rows x cols, every
// channel alike): the Permuted MNIST family's transform.
cv::Mat permute_pixels(const cv::Mat& image, const std::vector<int64_t>& order);

// Writes (image - mean) / std as float CHW into `out` (C*H*W floats).
void normalize_to_chw(const cv::Mat& image, const std::vector<double>& mean, const std::vector<double>& std,
                      float* out);

}  // namespace sscl
