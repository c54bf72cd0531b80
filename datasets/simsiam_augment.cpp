#include "datasets/simsiam_augment.h"

#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "core/error.h"
#include "datasets/augment_ops.h"
#include "datasets/transforms.h"

namespace sscl {

namespace {

bool is_range(const std::vector<double>& v) { return v.size() == 2 && v[0] > 0 && v[0] <= v[1]; }

}  // namespace

void SimSiamAugmentOptions::declare(OptionSpec<SimSiamAugmentOptions>& o) {
  using O = SimSiamAugmentOptions;
  o.key("crop_scale", &O::crop_scale, "random resized crop: [min, max] fraction of the image's area")
      .check([](const std::vector<double>& v) { return is_range(v) && v[1] <= 1; }, "must be [min, max] in (0, 1]");
  o.key("crop_ratio", &O::crop_ratio, "random resized crop: [min, max] aspect ratio (width / height)")
      .check(is_range, "must be [min, max] with 0 < min <= max");
  o.key("hflip", &O::hflip, "horizontal flip probability").between(0, 1);
  o.key("color_jitter", &O::color_jitter, "ColorJitter strengths: [brightness, contrast, saturation, hue]")
      .check(
          [](const std::vector<double>& v) {
            return v.size() == 4 && v[0] >= 0 && v[1] >= 0 && v[2] >= 0 && v[3] >= 0 && v[3] <= 0.5;
          },
          "must be 4 values >= 0, the hue's at most 0.5");
  o.key("color_jitter_p", &O::color_jitter_p, "probability of the color jitter").between(0, 1);
  o.key("grayscale_p", &O::grayscale_p, "probability of turning the view gray").between(0, 1);
}

std::string SimSiamAugmentOptions::describe() const {
  std::ostringstream text;
  text << "random resized crop (scale " << crop_scale[0] << "-" << crop_scale[1] << ", ratio " << crop_ratio[0] << "-"
       << crop_ratio[1] << "), flip (p " << hflip << "), color jitter (" << color_jitter[0] << ", " << color_jitter[1]
       << ", " << color_jitter[2] << ", " << color_jitter[3] << "; p " << color_jitter_p << "), grayscale (p "
       << grayscale_p << ")";
  return text.str();
}

cv::Mat random_resized_crop(const cv::Mat& image, double scale_min, double scale_max, double ratio_min,
                            double ratio_max, Rng& rng) {
  const int height = image.rows, width = image.cols;
  const double area = static_cast<double>(height) * width;
  const double log_min = std::log(ratio_min), log_max = std::log(ratio_max);
  cv::Rect box;
  bool found = false;
  for (int attempt = 0; attempt < 10 && !found; ++attempt) {
    const double target = area * rng.uniform(scale_min, scale_max);
    const double ratio = std::exp(rng.uniform(log_min, log_max));
    const int w = static_cast<int>(std::lround(std::sqrt(target * ratio)));
    const int h = static_cast<int>(std::lround(std::sqrt(target / ratio)));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const int top = static_cast<int>(rng.below(static_cast<uint64_t>(height - h + 1)));
      const int left = static_cast<int>(rng.below(static_cast<uint64_t>(width - w + 1)));
      box = cv::Rect(left, top, w, h);
      found = true;
    }
  }
  if (!found) {  // the centre crop of the whole image at the nearest allowed ratio
    const double in_ratio = static_cast<double>(width) / height;
    int w = width, h = height;
    if (in_ratio < ratio_min) h = static_cast<int>(std::lround(w / ratio_min));
    if (in_ratio > ratio_max) w = static_cast<int>(std::lround(h * ratio_max));
    box = cv::Rect((width - w) / 2, (height - h) / 2, w, h);
  }
  cv::Mat out;
  cv::resize(image(box), out, image.size(), 0, 0, cv::INTER_LINEAR);
  return out;
}

cv::Mat adjust_hue(const cv::Mat& image, double shift) {
  if (image.channels() == 1 || shift == 0) return image.clone();
  check<Error>(image.type() == CV_8UC3, "adjust_hue: expected a uint8 gray or RGB image");
  cv::Mat hsv;
  cv::cvtColor(image, hsv, cv::COLOR_RGB2HSV_FULL);  // hue 0..255 for a full turn
  const int offset = static_cast<int>(std::lround(shift * 256.0));
  for (int y = 0; y < hsv.rows; ++y) {
    auto* row = hsv.ptr<cv::Vec3b>(y);
    for (int x = 0; x < hsv.cols; ++x) row[x][0] = static_cast<uint8_t>((row[x][0] + offset + 256) % 256);
  }
  cv::Mat out;
  cv::cvtColor(hsv, out, cv::COLOR_HSV2RGB_FULL);
  return out;
}

cv::Mat color_jitter(const cv::Mat& image, const std::vector<double>& strength, Rng& rng) {
  std::array<int, 4> order{0, 1, 2, 3};
  for (int i = 3; i > 0; --i) std::swap(order[i], order[rng.below(static_cast<uint64_t>(i + 1))]);
  const auto factor = [&rng](double s) { return rng.uniform(std::max(0.0, 1 - s), 1 + s); };
  cv::Mat out = image.clone();
  for (const int op : order) {
    const double s = strength[op];
    if (s <= 0) continue;
    if (op == 0) out = brightness(out, factor(s));
    if (op == 1) out = contrast(out, factor(s));
    if (op == 2) out = color(out, factor(s));
    if (op == 3) out = adjust_hue(out, rng.uniform(-s, s));
  }
  return out;
}

cv::Mat simsiam_view(const cv::Mat& image, const SimSiamAugmentOptions& options, Rng& rng) {
  cv::Mat out = random_resized_crop(image, options.crop_scale[0], options.crop_scale[1], options.crop_ratio[0],
                                    options.crop_ratio[1], rng);
  random_hflip(out, options.hflip, rng);
  if (rng.bernoulli(options.color_jitter_p)) out = color_jitter(out, options.color_jitter, rng);
  if (rng.bernoulli(options.grayscale_p) && out.channels() == 3) {
    cv::Mat gray;
    cv::cvtColor(out, gray, cv::COLOR_RGB2GRAY);
    cv::cvtColor(gray, out, cv::COLOR_GRAY2RGB);
  }
  return out;
}

at::Tensor simsiam_views(const at::Tensor& raw, const SimSiamAugmentOptions& options, uint64_t seed) {
  check<Error>(raw.dim() == 4 && raw.scalar_type() == at::kByte && (raw.size(3) == 1 || raw.size(3) == 3),
               "simsiam_views: expected uint8 [N, H, W, C] images with 1 or 3 channels");
  const at::Tensor images = raw.cpu().contiguous();
  at::Tensor out = at::empty_like(images);
  if (images.size(0) == 0) return out;
  const int rows = static_cast<int>(images.size(1)), cols = static_cast<int>(images.size(2));
  const int type = images.size(3) == 1 ? CV_8UC1 : CV_8UC3;
  const int64_t image_bytes = images[0].numel();
  auto* src = images.data_ptr<uint8_t>();
  auto* dst = out.data_ptr<uint8_t>();
  tbb::parallel_for(int64_t{0}, images.size(0), [&](int64_t i) {
    const cv::Mat image(rows, cols, type, src + i * image_bytes);
    Rng rng(stream_seed(seed, "pretrain.view", i));
    const cv::Mat view = simsiam_view(image, options, rng);
    std::memcpy(dst + i * image_bytes, view.ptr<uint8_t>(), static_cast<size_t>(image_bytes));
  });
  return out;
}

}  // namespace sscl
