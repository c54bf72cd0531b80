// The image operations of RandAugment, re-created from PIL (ImageOps,
// ImageEnhance, Image.transform/rotate) on uint8 cv::Mat images of 1 (gray) or
// 3 (RGB order) channels. Each is deterministic in its arguments and returns a
// new image of the same size and type; anything else throws sscl::Error.
//
// Rounding follows Pillow where it is observable in the pixels:
//   - enhance ops (color, contrast, brightness, sharpness) use Image.blend:
//     degenerate + factor * (image - degenerate) in single-precision float,
//     clipped to [0, 255] and then TRUNCATED (not rounded), so factor 0.5 maps
//     101 to 50;
//   - gray (Color, Contrast) is Pillow's "L": (19595 R + 38470 G + 7471 B +
//     2^15) >> 16, i.e. the 299/587/114 per-mille weights rounded to nearest;
//   - auto_contrast's lut is int(i * scale + offset) in double, exactly as
//     Pillow computes it (so 1..10 stretches to 0..254, as in Pillow);
//   - the SMOOTH filter of sharpness rounds half up and keeps border pixels.
//
// Geometric ops use PIL's affine convention: output pixel (x, y) samples the
// input at a*x + b*y + c, d*x + e*y + f, coordinates measured from the image's
// top-left corner (pixel centres at +0.5). Sampling is OpenCV bicubic
// (INTER_CUBIC, a = -0.75) with a constant border of `fill` (per channel, fill[0]
// for gray); unlike PIL (a = -0.5, replicated edge taps), samples within two
// pixels of the edge blend in the fill, as in the reference's mmcv/cv2 ops.
// Integer sample positions are exact in both.
#pragma once

#include <opencv2/core.hpp>

namespace sscl {

// Per channel, maps min..max linearly onto 0..255 (ImageOps.autocontrast,
// cutoff 0); a constant channel is left unchanged.
cv::Mat auto_contrast(const cv::Mat& image);

// Per channel, ImageOps.equalize: with N pixels and `last` the count of the
// highest value present, step = (N - last) / 255 (integer); identity when step
// is 0 (so images under 256 pixels are unchanged); else value v maps to
// (step / 2 + count of pixels below v) / step, capped at 255.
cv::Mat equalize(const cv::Mat& image);

// 255 - v.
cv::Mat invert(const cv::Mat& image);

// Keeps the top `bits` bits (0..8) of every value; 0 gives black.
cv::Mat posterize(const cv::Mat& image, int bits);

// Inverts (255 - v) every value >= threshold; 256 is identity, 0 inverts all.
cv::Mat solarize(const cv::Mat& image, int threshold);

// Adds `add` (clipped to 0..255) to every value < threshold.
cv::Mat solarize_add(const cv::Mat& image, int add, int threshold = 128);

// ImageEnhance.Color: blend with the gray version; identity on gray images.
cv::Mat color(const cv::Mat& image, double factor);

// ImageEnhance.Contrast: blend with a constant image (every channel) at the
// gray image's mean, int(mean + 0.5).
cv::Mat contrast(const cv::Mat& image, double factor);

// ImageEnhance.Brightness: blend with black.
cv::Mat brightness(const cv::Mat& image, double factor);

// ImageEnhance.Sharpness: blend with ImageFilter.SMOOTH ([[1,1,1],[1,5,1],
// [1,1,1]] / 13 per channel; the border rows and columns keep their values).
cv::Mat sharpness(const cv::Mat& image, double factor);

// Image.rotate(degrees): counter-clockwise about the image centre, same size.
// cos and sin are rounded to 15 decimals as PIL does, so multiples of 90
// degrees are exact pixel permutations.
cv::Mat rotate(const cv::Mat& image, double degrees, const cv::Scalar& fill);

// Affine (1, shear, 0, 0, 1, 0): output(x, y) = input(x + shear * y, y) in
// corner coordinates, i.e. for pixel indices the row y is read shear * (y + 0.5)
// pixels to the right.
cv::Mat shear_x(const cv::Mat& image, double shear, const cv::Scalar& fill);
// Affine (1, 0, 0, shear, 1, 0): output(x, y) = input(x, y + shear * x).
cv::Mat shear_y(const cv::Mat& image, double shear, const cv::Scalar& fill);

// Affine (1, 0, pixels, 0, 1, 0): output(x, y) = input(x + pixels, y), so a
// positive shift moves the content left. `pixels` may be fractional.
cv::Mat translate_x(const cv::Mat& image, double pixels, const cv::Scalar& fill);
// output(x, y) = input(x, y + pixels): a positive shift moves the content up.
cv::Mat translate_y(const cv::Mat& image, double pixels, const cv::Scalar& fill);

}  // namespace sscl
