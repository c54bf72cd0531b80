// The pickle inside a torch.save file, decoded by a restricted unpickler of our
// own. LibTorch's C++ unpickler cannot read a Python state_dict: it turns every
// collections.OrderedDict into None (1.13 keeps OrderedDict only for a tensor's
// empty backward hooks). This one builds plain values only (None, bool, int,
// float, str, tuple, list, dict, tensor) and knows exactly the globals a
// state_dict names: collections.OrderedDict, torch's tensor-rebuilding helpers,
// the storage types, and the type tag LibTorch's pickle_save writes. Any other
// global, and every opcode that builds a class instance, is refused by name
// before anything is built from it; nothing is executed.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sscl {

struct PickledStateDict {
  std::vector<std::pair<std::string, at::Tensor>> tensors;  // in the pickle's order
  std::string under;  // "" for a state_dict, "state_dict" or "model" for a checkpoint dict holding one
};

// The bytes of a tensor storage, zip record data/<key>; IoError when absent.
using StorageBytes = std::function<std::string(const std::string& key)>;

// A dict of name -> tensor, or a dict holding one under "state_dict" or
// "model". IoError naming the byte offset and opcode, the global, or the
// key for a stream that is truncated, malformed, names a foreign global, or
// holds no such dict.
PickledStateDict unpickle_state_dict(std::string_view pickle, const StorageBytes& storage);

}  // namespace sscl
