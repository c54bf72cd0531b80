// The IDX format of MNIST and Fashion-MNIST: a 4-byte magic (0, 0, type, ndims),
// ndims big-endian uint32 sizes, then the data. Files may be gzip-compressed.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>

namespace sscl {

// Reads an unsigned-byte IDX file with `expected_dims` dimensions (3 for images,
// 1 for labels) into a uint8 tensor of its shape. Throws DataError naming the file
// for a missing, truncated or oversized file, a wrong magic, type or rank.
at::Tensor read_idx_ubyte(const std::filesystem::path& file, int expected_dims);

}  // namespace sscl
