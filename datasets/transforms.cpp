#include "datasets/transforms.h"

#include <algorithm>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace sscl {

cv::Mat random_crop(const cv::Mat& image, int padding, Rng& rng) {
  if (padding <= 0) return image.clone();
  cv::Mat padded;
  cv::copyMakeBorder(image, padded, padding, padding, padding, padding, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  const int dy = static_cast<int>(rng.below(2 * padding + 1));
  const int dx = static_cast<int>(rng.below(2 * padding + 1));
  return padded(cv::Rect(dx, dy, image.cols, image.rows)).clone();
}

void random_hflip(cv::Mat& image, double p, Rng& rng) {
  if (rng.bernoulli(p)) cv::flip(image, image, 1);
}

void cutout(cv::Mat& image, int size, const cv::Scalar& fill, Rng& rng) {
  if (size <= 0) return;
  const int cy = static_cast<int>(rng.below(image.rows));
  const int cx = static_cast<int>(rng.below(image.cols));
  const int y0 = std::max(0, cy - size / 2), x0 = std::max(0, cx - size / 2);
  const int y1 = std::min(image.rows, cy - size / 2 + size), x1 = std::min(image.cols, cx - size / 2 + size);
  image(cv::Rect(x0, y0, x1 - x0, y1 - y0)).setTo(fill);
}

void random_size_cutout(cv::Mat& image, double max_fraction, const cv::Scalar& fill, Rng& rng) {
  const int longest = std::max(1, static_cast<int>(max_fraction * std::min(image.rows, image.cols)));
  cutout(image, 1 + static_cast<int>(rng.below(longest)), fill, rng);
}

cv::Mat resize(const cv::Mat& image, int rows, int cols) {
  if (image.rows == rows && image.cols == cols) return image.clone();
  const bool shrink = rows * cols < image.rows * image.cols;
  cv::Mat out;
  cv::resize(image, out, cv::Size(cols, rows), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_CUBIC);
  return out;
}

cv::Mat rotate(const cv::Mat& image, double degrees) {
  const cv::Point2f centre(static_cast<float>(image.cols - 1) / 2.0f, static_cast<float>(image.rows - 1) / 2.0f);
  cv::Mat out;
  cv::warpAffine(image, out, cv::getRotationMatrix2D(centre, degrees, 1.0), image.size(), cv::INTER_LINEAR,
                 cv::BORDER_CONSTANT, cv::Scalar::all(0));
  return out;
}

cv::Mat permute_pixels(const cv::Mat& image, const std::vector<int64_t>& order) {
  const cv::Mat src = image.isContinuous() ? image : image.clone();
  cv::Mat out(src.size(), src.type());
  const size_t pixel = src.elemSize();
  for (size_t i = 0; i < order.size(); ++i)
    std::copy_n(src.data + static_cast<size_t>(order[i]) * pixel, pixel, out.data + i * pixel);
  return out;
}

void normalize_to_chw(const cv::Mat& image, const std::vector<double>& mean, const std::vector<double>& std,
                      float* out) {
  const int channels = image.channels(), plane = image.rows * image.cols;
  for (int c = 0; c < channels; ++c) {
    const float scale = static_cast<float>(1.0 / std[c]), shift = static_cast<float>(mean[c]);
    float* dst = out + static_cast<size_t>(c) * plane;
    for (int y = 0; y < image.rows; ++y) {
      const uint8_t* row = image.ptr<uint8_t>(y);
      for (int x = 0; x < image.cols; ++x) dst[y * image.cols + x] = (row[x * channels + c] - shift) * scale;
    }
  }
}

}  // namespace sscl
