#include "datasets/idx_reader.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "datasets/file_checks.h"

namespace sscl {

namespace {

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

// Reads up to n bytes; returns how many were read. gzread also reads plain files.
size_t read_bytes(gzFile f, void* out, size_t n, const std::string& name) {
  size_t total = 0;
  auto* p = static_cast<unsigned char*>(out);
  while (total < n) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - total, 1u << 30));
    const int got = gzread(f, p + total, chunk);
    if (got < 0) {
      int code = 0;
      throw DataError(name + ": read error: " + gzerror(f, &code));
    }
    if (got == 0) break;
    total += static_cast<size_t>(got);
  }
  return total;
}

// The sizes come from the header: before allocating them, check that the file can
// hold that much data, so that a corrupt header is an error and not gigabytes of
// memory. A plain file holds exactly its remaining bytes; deflate expands at most
// 1032:1, which bounds a gzip file.
void check_fits(const std::filesystem::path& file, gzFile f, size_t header_bytes, size_t count) {
  const std::string name = file.string();
  const uintmax_t file_bytes = std::filesystem::file_size(file);
  if (gzdirect(f)) {
    const uintmax_t data_bytes = file_bytes - std::min<uintmax_t>(file_bytes, header_bytes);
    if (count > data_bytes)
      throw DataError(name + ": truncated: expected " + std::to_string(count) + " bytes of data, got " +
                      std::to_string(data_bytes));
  } else if (count / 1032 > file_bytes) {
    throw DataError(name + ": truncated: expected " + std::to_string(count) + " bytes of data, more than a " +
                    std::to_string(file_bytes) + "-byte gzip file can hold");
  }
}

}  // namespace

at::Tensor read_idx_ubyte(const std::filesystem::path& file, int expected_dims) {
  const std::string name = file.string();
  if (!is_regular_file_path(file)) throw DataError(name + ": file not found");
  GzFile f(gzopen(name.c_str(), "rb"));
  if (!f) throw DataError(name + ": cannot open");

  unsigned char magic[4];
  if (read_bytes(f.get(), magic, 4, name) != 4) throw DataError(name + ": truncated IDX header");
  if (magic[0] != 0 || magic[1] != 0)
    throw DataError(name + ": not an IDX file (magic bytes " + std::to_string(magic[0]) + " " +
                    std::to_string(magic[1]) + ", expected 0 0)");
  if (magic[2] != 0x08)
    throw DataError(name + ": IDX data type " + std::to_string(magic[2]) + " is not unsigned byte (8)");
  if (magic[3] != expected_dims)
    throw DataError(name + ": IDX file has " + std::to_string(magic[3]) + " dimensions, expected " +
                    std::to_string(expected_dims));

  std::vector<int64_t> shape(expected_dims);
  size_t count = 1;
  for (int d = 0; d < expected_dims; ++d) {
    unsigned char be[4];
    if (read_bytes(f.get(), be, 4, name) != 4) throw DataError(name + ": truncated IDX header");
    shape[d] = (int64_t{be[0]} << 24) | (int64_t{be[1]} << 16) | (int64_t{be[2]} << 8) | int64_t{be[3]};
    if (shape[d] == 0) throw DataError(name + ": IDX dimension " + std::to_string(d) + " is 0");
    count *= static_cast<size_t>(shape[d]);
    if (count > (size_t{1} << 36)) throw DataError(name + ": IDX sizes are implausibly large");
  }
  check_fits(file, f.get(), 4 + 4 * static_cast<size_t>(expected_dims), count);

  at::Tensor data = at::empty(shape, at::kByte);
  const size_t got = read_bytes(f.get(), data.data_ptr<uint8_t>(), count, name);
  if (got != count)
    throw DataError(name + ": truncated: expected " + std::to_string(count) + " bytes of data, got " +
                    std::to_string(got));
  unsigned char extra;
  if (read_bytes(f.get(), &extra, 1, name) != 0)
    throw DataError(name + ": trailing bytes after " + std::to_string(count) + " bytes of data");
  return data;
}

}  // namespace sscl
