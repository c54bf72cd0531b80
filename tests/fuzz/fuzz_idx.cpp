// Fuzzes the IDX parser (Fashion-MNIST's format, plain or gzip) on raw bytes:
// the input is one file, read as images (3 dimensions) and as labels (1).
#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "datasets/idx_reader.h"
#include "tests/fuzz/fuzz_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const sscl::fuzz::ScratchDir dir;
  const auto file = dir.path() / "input-idx-ubyte";
  if (!sscl::fuzz::ScratchDir::write_file(file, sscl::fuzz::as_text(data, size))) return 0;
  for (int dims : {1, 3}) {
    try {
      const at::Tensor tensor = sscl::read_idx_ubyte(file, dims);
      if (tensor.dim() != dims || tensor.scalar_type() != at::kByte || !tensor.is_contiguous()) {
        std::fprintf(stderr, "idx fuzz: accepted a file as a tensor of the wrong kind\n");
        std::abort();
      }
    } catch (const sscl::Error&) {
      // rejected with a message
    }
  }
  return 0;
}
