// Fuzzes the Fashion-MNIST reader: the input is a bundle (fuzz_files.h) of its
// four IDX files (train-images-idx3-ubyte, ..., each plain or .gz). fuzz_idx
// covers the IDX parser alone, on raw bytes.
#include "tests/fuzz/fuzz_dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sscl::fuzz::fuzz_readers(data, size, {"fashion_mnist"});
}
