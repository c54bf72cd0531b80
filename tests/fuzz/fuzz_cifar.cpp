// Fuzzes the CIFAR-10 and CIFAR-100 readers (data_batch_N.bin, test_batch.bin,
// batches.meta.txt; train.bin, test.bin, fine_label_names.txt): the input is a
// bundle of files (fuzz_files.h) that both readers load.
#include "tests/fuzz/fuzz_dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sscl::fuzz::fuzz_readers(data, size, {"cifar10", "cifar100"});
}
