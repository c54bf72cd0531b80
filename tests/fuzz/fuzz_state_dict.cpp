// Fuzzes model.pretrained's unpickler (core/nn/state_dict_pickle.h), the part
// of the state_dict reader that is ours, on raw pickle bytes (the data.pkl of a
// torch.save file). Storages "0" to "3" hold 64 zero bytes each; any other key
// is absent. Beyond "no crash": every tensor it returns is named,
// defined, contiguous and fits the storages it was built from. The zip around
// the pickle is LibTorch's (caffe2's PyTorchStreamReader) and is not fuzzed here.
#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/nn/state_dict_pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto storage = [](const std::string& key) {
    if (key.size() != 1 || key[0] < '0' || key[0] > '3') throw sscl::IoError("no storage data/" + key);
    return std::string(64, '\0');
  };
  try {
    const auto read = sscl::unpickle_state_dict(std::string_view(reinterpret_cast<const char*>(data), size), storage);
    for (const auto& [name, tensor] : read.tensors)
      if (!tensor.defined() || !tensor.is_contiguous() || tensor.nbytes() > 64) {
        std::fprintf(stderr,
                     "state_dict fuzz: accepted a tensor that is undefined, strided or larger than its "
                     "storage\n");
        std::abort();
      }
  } catch (const sscl::Error&) {
    // rejected with a message
  }
  return 0;
}
