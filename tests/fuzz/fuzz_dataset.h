// The dataset fuzz targets: write the input's files into a fresh folder, load it
// with registered readers, and check what a reader that accepts it returns.
#pragma once

#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "datasets/image_dataset.h"
#include "tests/fuzz/fuzz_files.h"

namespace sscl::fuzz {

[[noreturn]] inline void broken(const std::string& reader, const std::string& what) {
  std::fprintf(stderr, "%s fuzz: broken promise: %s\n", reader.c_str(), what.c_str());
  std::abort();
}

// What every reader promises besides validate(): the two splits share the image
// shape, and there is a class name and a mean and std per channel.
inline void check_splits(const std::string& reader, const DatasetSplits& splits) {
  for (const auto* split : {splits.train.get(), splits.test.get()}) {
    if (!split) broken(reader, "a split is missing");
    validate(*split, reader);
  }
  if (splits.train->images.sizes().slice(1) != splits.test->images.sizes().slice(1))
    broken(reader, "train and test images differ in shape");
  if (static_cast<int64_t>(splits.class_names.size()) != splits.train->num_classes)
    broken(reader, std::to_string(splits.class_names.size()) + " class names for " +
                       std::to_string(splits.train->num_classes) + " classes");
  const auto channels = static_cast<size_t>(splits.train->images.size(3));
  if (splits.mean.size() != channels || splits.std.size() != channels)
    broken(reader, "mean/std do not have one value per channel");
}

// Loads the input's bundle with each reader; a rejection (sscl::Error) is fine.
inline int fuzz_readers(const uint8_t* data, size_t size, const std::vector<std::string>& readers) {
  const ScratchDir dir;
  if (dir.write(split_bundle(as_text(data, size), "")) == 0) return 0;
  for (const std::string& reader : readers) {
    try {
      check_splits(reader, DatasetRegistry::get().at(reader)(dir.path().string()));
    } catch (const Error&) {
      // rejected with a message
    }
  }
  return 0;
}

}  // namespace sscl::fuzz
