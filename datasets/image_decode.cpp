#include "datasets/image_decode.h"

#include <ATen/ATen.h>
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "datasets/file_checks.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;

// IMREAD_ANYCOLOR keeps gray images single-channel (so the reader can tell), makes
// colour ones 3-channel BGR, drops alpha and reduces 16-bit images to 8 bits.
cv::Mat read(const fs::path& file) {
  if (!is_regular_file_path(file)) throw DataError(file.string() + ": file not found");
  cv::Mat image;
  try {
    image = cv::imread(file.string(), cv::IMREAD_ANYCOLOR);
  } catch (const cv::Exception& e) {
    throw DataError(file.string() + ": cannot decode image: " + e.err);
  }
  if (image.empty()) throw DataError(file.string() + ": cannot decode image");
  if (image.depth() != CV_8U) throw DataError(file.string() + ": unsupported pixel depth (not 8-bit)");
  return image;
}

// Writes `image` (BGR, BGRA or gray) as RGB (channels 3) or gray (1) into `target`,
// a header over the output tensor's memory.
void convert_into(const cv::Mat& image, int channels, cv::Mat& target) {
  const int cn = image.channels();
  if (channels == 3)
    cv::cvtColor(image, target, cn == 1 ? cv::COLOR_GRAY2RGB : cn == 4 ? cv::COLOR_BGRA2RGB : cv::COLOR_BGR2RGB);
  else if (cn == 1)
    image.copyTo(target);
  else
    cv::cvtColor(image, target, cn == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
}

std::string image_size_text(const cv::Mat& image) {
  return std::to_string(image.cols) + "x" + std::to_string(image.rows);
}

std::string gib_text(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GiB", bytes / (1 << 30));
  return text;
}

}  // namespace

at::Tensor decode_images(const std::vector<fs::path>& files, int channels, const fs::path& reference) {
  check<DataError>(channels == 0 || channels == 1 || channels == 3, "decode_images: channels must be 0, 1 or 3");
  const int out_channels = channels == 0 ? 3 : channels;
  const int64_t n = static_cast<int64_t>(files.size());
  if (n == 0) return at::empty({0, 0, 0, out_channels}, at::kByte);

  const fs::path& ref = reference.empty() ? files[0] : reference;
  const cv::Mat first = read(ref);
  const int rows = first.rows, cols = first.cols;
  const int64_t image_bytes = int64_t{rows} * cols * out_channels;
  // The size comes from one image's header, the count from the file list: a
  // product beyond memory is the data's fault, and must say so.
  at::Tensor images;
  try {
    images = at::empty({n, rows, cols, out_channels}, at::kByte);
  } catch (const c10::Error&) {
    throw DataError(ref.string() + ": " + std::to_string(n) + " images of " + image_size_text(first) +
                    " (width x height) do not fit in memory (" +
                    gib_text(static_cast<double>(n) * static_cast<double>(image_bytes)) + ")");
  }
  uint8_t* base = images.data_ptr<uint8_t>();

  // Images after a failure are skipped, those before it are all tried: the error
  // reported is that of the first bad file, whatever the scheduling.
  std::atomic<int64_t> first_bad{n};
  std::mutex mutex;
  std::string error;
  std::atomic<bool> all_gray{true};
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n), [&](const tbb::blocked_range<int64_t>& range) {
    for (int64_t i = range.begin(); i != range.end(); ++i) {
      if (i > first_bad.load(std::memory_order_relaxed)) return;
      try {
        const cv::Mat image = (i == 0 && reference.empty()) ? first : read(files[i]);
        if (image.rows != rows || image.cols != cols)
          throw DataError(files[i].string() + ": image is " + image_size_text(image) + " (width x height), expected " +
                          image_size_text(first) + " like " + ref.string());
        if (image.channels() != 1) all_gray.store(false, std::memory_order_relaxed);
        cv::Mat target(rows, cols, CV_8UC(out_channels), base + i * image_bytes);
        convert_into(image, out_channels, target);
      } catch (const DataError& e) {
        std::lock_guard<std::mutex> lock(mutex);
        if (i < first_bad.load()) {
          first_bad.store(i);
          error = e.what();
        }
      }
    }
  });
  if (first_bad.load() < n) throw DataError(error);
  // Gray images were replicated into R, G and B; one plane is the gray image.
  if (channels == 0 && all_gray.load()) return images.narrow(3, 0, 1).contiguous();
  return images;
}

std::vector<fs::path> list_images(const fs::path& dir, const std::vector<std::string>& extensions) {
  if (!is_directory_path(dir)) throw DataError(dir.string() + ": directory not found");
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& path = it->path();
    const std::string name = path.filename().string();
    std::error_code file_ec;
    if (name.empty() || name[0] == '.' || !it->is_regular_file(file_ec)) continue;
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (std::find(extensions.begin(), extensions.end(), ext) != extensions.end()) out.push_back(path);
  }
  if (ec) throw DataError(dir.string() + ": cannot list: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace sscl
