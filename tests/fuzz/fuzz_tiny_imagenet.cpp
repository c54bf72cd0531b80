// Fuzzes the TinyImageNet-200 reader (wnids.txt, words.txt, train/WNID/images/*,
// val/val_annotations.txt, val/images/*): the input is a bundle of files
// (fuzz_files.h).
#include "tests/fuzz/fuzz_dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sscl::fuzz::fuzz_readers(data, size, {"tiny_imagenet"});
}
