#pragma once

#include <torch/torch.h>

#include "datasets/image_dataset.h"

namespace sscl::testing {

// `per_class` random images of each of `classes` classes (labels cycle 0..C-1).
inline DatasetSplits synthetic_splits(int64_t classes, int64_t per_class, int64_t channels = 1, int64_t size = 8) {
  torch::manual_seed(3);
  auto make = [&](int64_t n) {
    auto d = std::make_shared<ImageDataset>();
    d->images = torch::randint(0, 256, {n, size, size, channels}).to(torch::kByte).contiguous();
    d->labels = torch::arange(n, torch::kLong).remainder(classes);
    d->num_classes = classes;
    return d;
  };
  DatasetSplits s;
  s.name = "synthetic";
  s.train = make(classes * per_class);
  s.test = make(classes * 3);
  s.mean.assign(channels, 127.5);
  s.std.assign(channels, 64.0);
  return s;
}

}  // namespace sscl::testing
