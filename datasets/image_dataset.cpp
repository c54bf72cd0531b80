#include "datasets/image_dataset.h"

#include <ATen/ATen.h>
#include <oneapi/tbb/parallel_for.h>

#include "core/error.h"
#include "datasets/transforms.h"

namespace sscl {

SSCL_DEFINE_REGISTRY(DatasetRegistry, "dataset", "data")

void validate(const ImageDataset& d, const std::string& source) {
  auto fail = [&](const std::string& what) { throw DataError(source + ": " + what); };
  if (!d.images.defined() || d.images.dim() != 4 || d.images.scalar_type() != at::kByte)
    fail("images must be a [N, H, W, C] uint8 tensor");
  if (!d.labels.defined() || d.labels.dim() != 1 || d.labels.scalar_type() != at::kLong)
    fail("labels must be a [N] int64 tensor");
  if (d.images.size(0) != d.labels.size(0))
    fail(std::to_string(d.images.size(0)) + " images but " + std::to_string(d.labels.size(0)) + " labels");
  if (d.size() == 0) fail("no images");
  const int64_t lo = d.labels.min().item<int64_t>(), hi = d.labels.max().item<int64_t>();
  if (lo < 0 || hi >= d.num_classes)
    fail("labels in [" + std::to_string(lo) + ", " + std::to_string(hi) + "] outside [0, " +
         std::to_string(d.num_classes) + ")");
}

std::shared_ptr<ImageDataset> mapped(const ImageDataset& d, int rows, int cols,
                                     const std::function<cv::Mat(const cv::Mat&)>& op) {
  const auto shape = d.shape();
  auto out = std::make_shared<ImageDataset>(d);
  const int channels = static_cast<int>(shape.channels);
  out->images = at::empty({d.size(), rows, cols, channels}, at::kByte);
  auto* src = const_cast<uint8_t*>(d.images.data_ptr<uint8_t>());
  uint8_t* dst = out->images.data_ptr<uint8_t>();
  const int64_t src_bytes = shape.height * shape.width * channels, dst_bytes = int64_t{rows} * cols * channels;
  tbb::parallel_for(int64_t{0}, d.size(), [&](int64_t i) {
    const cv::Mat image(static_cast<int>(shape.height), static_cast<int>(shape.width), CV_8UC(channels),
                        src + i * src_bytes);
    cv::Mat target(rows, cols, CV_8UC(channels), dst + i * dst_bytes);
    op(image).copyTo(target);
  });
  return out;
}

std::shared_ptr<const ImageDataset> resized(const ImageDataset& d, int rows, int cols) {
  const auto shape = d.shape();
  if (shape.height == rows && shape.width == cols) return std::make_shared<ImageDataset>(d);
  return mapped(d, rows, cols, [rows, cols](const cv::Mat& image) { return resize(image, rows, cols); });
}

}  // namespace sscl
