#include "datasets/augment_ops.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace sscl {
namespace {

using Lut = std::array<uint8_t, 256>;
using Histogram = std::array<int64_t, 256>;

void check_image(const cv::Mat& image, const char* op) {
  if (image.empty() || image.depth() != CV_8U || (image.channels() != 1 && image.channels() != 3))
    throw Error(std::string(op) + ": expects a non-empty uint8 image of 1 or 3 channels, got " +
                cv::typeToString(image.type()) + " " + std::to_string(image.rows) + "x" + std::to_string(image.cols));
}

// One table per channel (or a single table for every channel).
cv::Mat apply_luts(const cv::Mat& image, const std::vector<Lut>& luts) {
  const int cn = static_cast<int>(luts.size());
  cv::Mat table(1, 256, CV_8UC(cn));
  for (int i = 0; i < 256; ++i)
    for (int c = 0; c < cn; ++c) table.ptr<uint8_t>(0)[i * cn + c] = luts[c][i];
  cv::Mat out;
  cv::LUT(image, table, out);
  return out;
}

template <typename F>
cv::Mat map_values(const cv::Mat& image, F f) {
  Lut lut;
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(f(i));
  return apply_luts(image, {lut});
}

std::vector<Histogram> channel_histograms(const cv::Mat& image) {
  const int cn = image.channels();
  std::vector<Histogram> hist(cn, Histogram{});
  for (int y = 0; y < image.rows; ++y) {
    const uint8_t* row = image.ptr<uint8_t>(y);
    for (int i = 0; i < image.cols * cn; ++i) ++hist[i % cn][row[i]];
  }
  return hist;
}

Lut identity_lut() {
  Lut lut;
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i);
  return lut;
}

// Pillow's RGB -> L (Convert.c, L24): per-mille weights in 16-bit fixed point, rounded.
cv::Mat gray_of(const cv::Mat& image) {
  if (image.channels() == 1) return image.clone();
  cv::Mat gray(image.size(), CV_8UC1);
  for (int y = 0; y < image.rows; ++y) {
    const uint8_t* in = image.ptr<uint8_t>(y);
    uint8_t* out = gray.ptr<uint8_t>(y);
    for (int x = 0; x < image.cols; ++x, in += 3)
      out[x] = static_cast<uint8_t>((in[0] * 19595 + in[1] * 38470 + in[2] * 7471 + 0x8000) >> 16);
  }
  return gray;
}

// Image.blend(degenerate, image, factor) as Pillow's Blend.c computes it: float
// arithmetic, clip, then truncation by the cast to UINT8.
cv::Mat blend(const cv::Mat& degenerate, const cv::Mat& image, double factor) {
  const float alpha = static_cast<float>(factor);
  cv::Mat out(image.size(), image.type());
  const int width = image.cols * image.channels();
  for (int y = 0; y < image.rows; ++y) {
    const uint8_t* d = degenerate.ptr<uint8_t>(y);
    const uint8_t* v = image.ptr<uint8_t>(y);
    uint8_t* o = out.ptr<uint8_t>(y);
    for (int i = 0; i < width; ++i) {
      const float mixed = static_cast<float>(d[i]) + alpha * static_cast<float>(v[i] - d[i]);
      o[i] = mixed <= 0.f ? 0 : mixed >= 255.f ? 255 : static_cast<uint8_t>(mixed);
    }
  }
  return out;
}

// Pillow's Image.transform(AFFINE, m) with m in corner coordinates (pixel
// centres at +0.5); cv::warpAffine works on pixel indices, hence the shift.
cv::Mat pil_affine(const cv::Mat& image, cv::Matx23d m, const cv::Scalar& fill) {
  m(0, 2) += 0.5 * (m(0, 0) + m(0, 1) - 1.0);
  m(1, 2) += 0.5 * (m(1, 0) + m(1, 1) - 1.0);
  cv::Mat out;
  cv::warpAffine(image, out, m, image.size(), cv::INTER_CUBIC | cv::WARP_INVERSE_MAP, cv::BORDER_CONSTANT, fill);
  return out;
}

}  // namespace

cv::Mat auto_contrast(const cv::Mat& image) {
  check_image(image, "auto_contrast");
  std::vector<Lut> luts;
  for (const Histogram& h : channel_histograms(image)) {
    int lo = 0, hi = 255;
    while (lo < 255 && h[lo] == 0) ++lo;
    while (hi > 0 && h[hi] == 0) --hi;
    Lut lut = identity_lut();
    if (hi > lo) {
      const double scale = 255.0 / (hi - lo), offset = -lo * scale;
      for (int i = 0; i < 256; ++i) {
        // Two roundings as in Pillow (volatile: no fused multiply-add), hence 1..10 -> 0..254.
        volatile double scaled = i * scale;
        const int v = static_cast<int>(scaled + offset);
        lut[i] = static_cast<uint8_t>(std::clamp(v, 0, 255));
      }
    }
    luts.push_back(lut);
  }
  return apply_luts(image, luts);
}

cv::Mat equalize(const cv::Mat& image) {
  check_image(image, "equalize");
  std::vector<Lut> luts;
  for (const Histogram& h : channel_histograms(image)) {
    int64_t total = 0, last = 0;
    for (int64_t count : h) {
      if (count == 0) continue;
      total += count;
      last = count;
    }
    const int64_t step = (total - last) / 255;
    Lut lut = identity_lut();
    if (step > 0) {
      int64_t n = step / 2;
      for (int i = 0; i < 256; ++i) {
        lut[i] = static_cast<uint8_t>(std::min<int64_t>(n / step, 255));
        n += h[i];
      }
    }
    luts.push_back(lut);
  }
  return apply_luts(image, luts);
}

cv::Mat invert(const cv::Mat& image) {
  check_image(image, "invert");
  return map_values(image, [](int v) { return 255 - v; });
}

cv::Mat posterize(const cv::Mat& image, int bits) {
  check_image(image, "posterize");
  if (bits < 0 || bits > 8) throw Error("posterize: bits must be in [0, 8], got " + std::to_string(bits));
  const int mask = ~((1 << (8 - bits)) - 1) & 0xff;
  return map_values(image, [mask](int v) { return v & mask; });
}

cv::Mat solarize(const cv::Mat& image, int threshold) {
  check_image(image, "solarize");
  return map_values(image, [threshold](int v) { return v < threshold ? v : 255 - v; });
}

cv::Mat solarize_add(const cv::Mat& image, int add, int threshold) {
  check_image(image, "solarize_add");
  return map_values(image, [=](int v) { return v < threshold ? std::clamp(v + add, 0, 255) : v; });
}

cv::Mat color(const cv::Mat& image, double factor) {
  check_image(image, "color");
  if (image.channels() == 1) return image.clone();  // PIL: the degenerate of an L image is itself
  cv::Mat degenerate;
  cv::cvtColor(gray_of(image), degenerate, cv::COLOR_GRAY2RGB);
  return blend(degenerate, image, factor);
}

cv::Mat contrast(const cv::Mat& image, double factor) {
  check_image(image, "contrast");
  const cv::Mat gray = gray_of(image);
  int64_t sum = 0;
  for (int y = 0; y < gray.rows; ++y)
    for (int x = 0; x < gray.cols; ++x) sum += gray.ptr<uint8_t>(y)[x];
  const int mean = static_cast<int>(static_cast<double>(sum) / gray.total() + 0.5);  // ImageStat mean, int(m + 0.5)
  return blend(cv::Mat(image.size(), image.type(), cv::Scalar::all(mean)), image, factor);
}

cv::Mat brightness(const cv::Mat& image, double factor) {
  check_image(image, "brightness");
  return blend(cv::Mat::zeros(image.size(), image.type()), image, factor);
}

cv::Mat sharpness(const cv::Mat& image, double factor) {
  check_image(image, "sharpness");
  // SMOOTH = 3x3 box + 4 * centre, / 13, rounded half up; borders stay as they are.
  cv::Mat smooth = image.clone();
  const int cn = image.channels();
  for (int y = 1; y + 1 < image.rows; ++y) {
    const uint8_t* rows[3] = {image.ptr<uint8_t>(y - 1), image.ptr<uint8_t>(y), image.ptr<uint8_t>(y + 1)};
    uint8_t* out = smooth.ptr<uint8_t>(y);
    for (int i = cn; i < (image.cols - 1) * cn; ++i) {
      int sum = 4 * rows[1][i];
      for (const uint8_t* row : rows) sum += row[i - cn] + row[i] + row[i + cn];
      out[i] = static_cast<uint8_t>((sum + 6) / 13);
    }
  }
  return blend(smooth, image, factor);
}

cv::Mat rotate(const cv::Mat& image, double degrees, const cv::Scalar& fill) {
  check_image(image, "rotate");
  double angle = std::fmod(degrees, 360.0);
  if (angle < 0) angle += 360.0;
  const double radians = -angle * M_PI / 180.0;
  auto round15 = [](double v) { return std::round(v * 1e15) / 1e15; };
  const double a = round15(std::cos(radians)), b = round15(std::sin(radians));
  const double cx = image.cols / 2.0, cy = image.rows / 2.0;
  // PIL: (a, b, -b, a) about the centre, i.e. input = R (output - centre) + centre.
  return pil_affine(image, cv::Matx23d(a, b, -a * cx - b * cy + cx, -b, a, b * cx - a * cy + cy), fill);
}

cv::Mat shear_x(const cv::Mat& image, double shear, const cv::Scalar& fill) {
  check_image(image, "shear_x");
  return pil_affine(image, cv::Matx23d(1, shear, 0, 0, 1, 0), fill);
}

cv::Mat shear_y(const cv::Mat& image, double shear, const cv::Scalar& fill) {
  check_image(image, "shear_y");
  return pil_affine(image, cv::Matx23d(1, 0, 0, shear, 1, 0), fill);
}

cv::Mat translate_x(const cv::Mat& image, double pixels, const cv::Scalar& fill) {
  check_image(image, "translate_x");
  return pil_affine(image, cv::Matx23d(1, 0, pixels, 0, 1, 0), fill);
}

cv::Mat translate_y(const cv::Mat& image, double pixels, const cv::Scalar& fill) {
  check_image(image, "translate_y");
  return pil_affine(image, cv::Matx23d(1, 0, 0, 0, 1, pixels), fill);
}

}  // namespace sscl
