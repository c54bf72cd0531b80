// model.pretrained: a run starts from the weights of a file (core/nn/state_dict_file.h)
// instead of random ones. Each tensor of the file is matched to the model's by
// name: after stripping model.pretrained_prefix, as it is, then with
// torchvision's names for ours (`downsample` -> `shortcut`, `fc` and
// MobileNetV2's `classifier.1` -> `head`) and under `backbone.` (a file of the
// backbone alone). Tensors whose shapes differ (another head, a stem of
// another size) are skipped and listed, as are the model's tensors the file
// does not fill (missing) and the file's that match nothing (unexpected);
// model.pretrained_strict makes any of them an error naming the key.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/nn/state_dict_file.h"

namespace sscl {

struct PretrainedReport {
  std::string file, format, prefix;
  bool strict = false;
  int64_t file_tensors = 0;
  int64_t outside_prefix = 0;     // file tensors not under the prefix: not considered
  int64_t loaded_tensors = 0;     // of the model's tensors (parameters and buffers)
  int64_t loaded_parameters = 0;  // elements of the loaded parameters
  int64_t model_tensors = 0;
  int64_t renamed = 0;                  // matched only through a torchvision name or under backbone.
  std::vector<std::string> loaded;      // model tensors the file filled
  std::vector<std::string> missing;     // model tensors the file does not fill
  std::vector<std::string> skipped;     // "key: [a, b] in the file, [c, d] in the model"
  std::vector<std::string> unexpected;  // file tensors (prefix stripped) that match none of the model's
};

// Copies the matching tensors of `file` into `model` (its parameters and
// buffers, in place, without gradients). ConfigError when the prefix matches no
// key, when nothing matches at all, or, with `strict`, when anything is missing,
// skipped or unexpected; each names keys and the option.
PretrainedReport load_pretrained(torch::nn::Module& model, const StateDictFile& file, const std::string& prefix,
                                 bool strict);

// Our name of a CIFAR ResNet's tensor as torchvision's ResNet names it
// (`backbone.` dropped, `shortcut` -> `downsample`, `head` -> `fc`): the names
// tools/export --state-dict writes, which the loader matches back.
std::string torchvision_resnet_name(const std::string& name);

// The names a state_dict is written under: ours, or torchvision's for a model
// whose tensors are laid out as torchvision's are.
enum class TensorNames {
  kSscl,
  kTorchvisionResNet,       // the CIFAR ResNets (torchvision_resnet_name)
  kTorchvisionMobileNetV2,  // MobileNetV2's reference variant: features.*, classifier.1
};

// Whether `model` (a Classifier over our MobileNetV2) has torchvision's layout:
// the reference variant (no expansion conv in the first block, no projection
// shortcuts), whose tensors torchvision's MobileNetV2 names one for one.
bool has_torchvision_mobilenet_v2_layout(torch::nn::Module& model);

// The model's parameters, then its buffers, with their dotted names, under
// `names`: what tools/export --state-dict writes.
std::vector<std::pair<std::string, at::Tensor>> named_tensors(torch::nn::Module& model,
                                                              TensorNames names = TensorNames::kSscl);

// One line for train.log, and results.json's "pretrained".
std::string describe(const PretrainedReport& report);
nlohmann::json to_json(const PretrainedReport& report);

}  // namespace sscl
