#include "datasets/image_dataset.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace sscl {

SSCL_DEFINE_REGISTRY(DatasetRegistry, "dataset")

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

}  // namespace sscl
