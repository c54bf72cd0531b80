// The named tensors of a weights file, whichever of the formats people hand
// around it is in: a state_dict written by Python's torch.save (the zip format of
// PyTorch >= 1.6), sscl's own model.pt, or an sscl checkpoint (its model). The
// pickle of a torch.save file is decoded by our restricted unpickler
// (core/nn/state_dict_pickle.h): only tensors in plain containers are read, and
// the pickle is never executed.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace sscl {

struct StateDictFile {
  std::filesystem::path path;
  // "torch.save state_dict", "torch.save checkpoint['state_dict']", "sscl model.pt", "sscl checkpoint".
  std::string format;
  std::vector<std::pair<std::string, at::Tensor>> tensors;  // in the file's order, on the CPU
};

// IoError naming the file when it is missing, not a PyTorch file, truncated,
// in PyTorch's legacy non-zip format (the message says how to re-save it), or
// its pickle imports anything but tensors and plain containers (naming it).
StateDictFile read_state_dict_file(const std::filesystem::path& path);

// The bytes of a torch.save file of {name: tensor} in this order (LibTorch's
// pickle_save: the zip format, which Python's torch.load and
// read_state_dict_file read).
std::string state_dict_bytes(const std::vector<std::pair<std::string, at::Tensor>>& tensors);

}  // namespace sscl
