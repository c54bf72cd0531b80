// Fuzzes the image-folder reader (train/CLASS/*, test/CLASS/* or val/CLASS/*):
// the input is a bundle of files (fuzz_files.h).
#include "tests/fuzz/fuzz_dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sscl::fuzz::fuzz_readers(data, size, {"image_folder"});
}
