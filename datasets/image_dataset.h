// A decoded dataset split held in memory once as uint8 and shared by every task.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/nn/backbone.h"
#include "core/registry.h"

namespace cv {
class Mat;
}

namespace sscl {

struct ImageDataset {
  at::Tensor images;  // [N, H, W, C] uint8, contiguous
  at::Tensor labels;  // [N] int64 in [0, num_classes)
  int64_t num_classes = 0;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  InputShape shape() const { return {images.size(3), images.size(1), images.size(2)}; }
};

// Where one domain's images lie in a dataset's training and test sets (a
// dataset of several domains, or copies of one under a transform per domain).
struct DomainRange {
  int64_t train_begin = 0, train_end = 0, test_begin = 0, test_end = 0;
};

struct DatasetSplits {
  std::string name;
  std::shared_ptr<const ImageDataset> train;
  std::shared_ptr<const ImageDataset> test;
  std::vector<std::string> class_names;
  // Per-channel normalisation on the 0..255 scale (data.mean / data.std override).
  std::vector<double> mean;
  std::vector<double> std;
  // A dataset made of domains (image_folder_domains): each one's images, in
  // order; empty for a dataset of one domain.
  std::vector<DomainRange> domains;
  std::vector<std::string> domain_names;
};

// Factory: the directory named by data.root.
SSCL_DECLARE_REGISTRY(DatasetRegistry, std::function<DatasetSplits(const std::string& root)>);

// Checks the invariants every reader must give (shapes, dtypes, label range) and
// throws DataError naming `source` otherwise.
void validate(const ImageDataset& dataset, const std::string& source);

// A copy with every image resized to rows x cols (transforms.h's resize), done once
// at load so that no iteration pays for it.
std::shared_ptr<const ImageDataset> resized(const ImageDataset& dataset, int rows, int cols);

// A copy with every image replaced by op(image), which must return a rows x cols
// image of the same channels (in parallel; op must be thread-safe).
std::shared_ptr<ImageDataset> mapped(const ImageDataset& dataset, int rows, int cols,
                                     const std::function<cv::Mat(const cv::Mat&)>& op);

}  // namespace sscl
