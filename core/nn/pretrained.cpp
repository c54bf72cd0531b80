#include "core/nn/pretrained.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"

namespace sscl {
namespace {

std::string shape_text(at::IntArrayRef sizes) {
  std::ostringstream os;
  os << sizes;
  return os.str();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

// A leading "<digits>." of `s`: the number, and `s` after it; -1 when there is none.
std::pair<int64_t, std::string> leading_index(const std::string& s) {
  size_t digits = 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  if (digits == 0 || digits > 9 || digits >= s.size() || s[digits] != '.') return {-1, s};
  return {std::stoll(s.substr(0, digits)), s.substr(digits + 1)};
}

// Our MobileNetV2's name (under the backbone) of a torchvision MobileNetV2 key,
// or "" when the key is not one: features.0 is the stem (conv1, bn1);
// features.K.conv.* is block K-1 (layers.K-1), whose first entry is the 1x1
// expansion (conv1, bn1) when the block has one (the file holds conv.3) and the
// depthwise conv (conv2, bn2) when it does not (t = 1); the last features.K is
// the final 1x1 conv (conv2, bn2). `expanded(K)`: whether the file's block K
// has an expansion.
std::string mobilenet_v2_name(const std::string& key, const std::function<bool(int64_t)>& expanded) {
  if (key.rfind("features.", 0) != 0) return "";
  const auto [k, rest] = leading_index(key.substr(9));
  if (k < 0) return "";
  if (rest.rfind("conv.", 0) != 0) {  // a conv + BN + ReLU6 of its own: the stem or the last conv
    const auto [i, param] = leading_index(rest);
    if (i < 0 || i > 1) return "";
    return (k == 0 ? (i == 0 ? "conv1." : "bn1.") : (i == 0 ? "conv2." : "bn2.")) + param;
  }
  if (k == 0) return "";
  const auto [i, after] = leading_index(rest.substr(5));
  if (i < 0) return "";
  const std::string block = "layers." + std::to_string(k - 1) + ".";
  // Expanded: [expand conv+BN], [depthwise conv+BN], project conv, BN; else the first two.
  const int64_t first = expanded(k) ? 0 : 1;  // the position of conv.0 in conv1, conv2, conv3
  const int64_t position = i + first;
  if (position <= 1) {
    const auto [j, param] = leading_index(after);
    if (j < 0 || j > 1) return "";
    return block + (j == 0 ? "conv" : "bn") + std::to_string(position + 1) + "." + param;
  }
  if (position == 2) return block + "conv3." + after;
  if (position == 3) return block + "bn3." + after;
  return "";
}

// The model keys a file key may stand for, most literal first.
std::vector<std::string> candidates(const std::string& key, const std::function<bool(int64_t)>& expanded) {
  std::string aliased = "." + key;
  replace_all(aliased, ".downsample.", ".shortcut.");
  aliased.erase(0, 1);
  for (const std::string head : {"fc.", "classifier.1."})
    if (aliased.rfind(head, 0) == 0) return {key, "head." + aliased.substr(head.size())};
  std::vector<std::string> out{key};
  if (aliased != key) out.push_back(aliased);
  out.push_back("backbone." + aliased);
  if (const std::string mobilenet = mobilenet_v2_name(key, expanded); !mobilenet.empty())
    out.push_back("backbone." + mobilenet);
  return out;
}

// A multi-head classifier's head_classes_<t> buffers record which classes each
// head predicts: the run's own task split, not weights (core/nn/classifier.cpp).
bool is_split_structure(const std::string& name) { return name.rfind("head_classes_", 0) == 0; }

std::string first_keys(const std::vector<std::string>& keys, size_t n = 3) {
  std::string text;
  for (size_t i = 0; i < keys.size() && i < n; ++i) text += (i ? ", '" : "'") + keys[i] + "'";
  return keys.size() > n ? text + ", ..." : text;
}

}  // namespace

PretrainedReport load_pretrained(torch::nn::Module& model, const StateDictFile& file, const std::string& prefix,
                                 bool strict) {
  PretrainedReport r;
  r.file = file.path.string();
  r.format = file.format;
  r.prefix = prefix;
  r.strict = strict;
  r.file_tensors = static_cast<int64_t>(file.tensors.size());
  std::map<std::string, at::Tensor> targets;
  std::set<std::string> parameters;
  for (const auto& p : model.named_parameters()) targets[p.key()] = p.value(), parameters.insert(p.key());
  for (const auto& b : model.named_buffers())
    if (!is_split_structure(b.key())) targets[b.key()] = b.value();
  r.model_tensors = static_cast<int64_t>(targets.size());

  std::set<std::string> filled, in_file;
  for (const auto& t : file.tensors)
    if (t.first.rfind(prefix, 0) == 0) in_file.insert(t.first.substr(prefix.size()));
  const auto expanded = [&in_file](int64_t k) {
    return in_file.count("features." + std::to_string(k) + ".conv.3.weight") > 0;
  };
  std::vector<std::string> file_keys;
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : file.tensors) {
    if (!prefix.empty() && name.rfind(prefix, 0) != 0) {
      ++r.outside_prefix;
      continue;
    }
    const std::string key = name.substr(prefix.size());
    file_keys.push_back(key);
    const auto names = candidates(key, expanded);
    auto match = names.begin();
    while (match != names.end() && (!targets.count(*match) || filled.count(*match))) ++match;
    if (match == names.end()) {
      r.unexpected.push_back(key);
      continue;
    }
    at::Tensor& target = targets.at(*match);
    if (target.sizes() != tensor.sizes()) {
      r.skipped.push_back(key + ": " + shape_text(tensor.sizes()) + " in the file, " + shape_text(target.sizes()) +
                          " in the model (" + *match + ")");
      filled.insert(*match);  // not missing: it is listed as skipped
      continue;
    }
    target.copy_(tensor);
    filled.insert(*match);
    if (*match != key) ++r.renamed;
    r.loaded.push_back(*match);
    if (parameters.count(*match)) r.loaded_parameters += tensor.numel();
  }
  r.loaded_tensors = static_cast<int64_t>(r.loaded.size());
  for (const auto& [name, tensor] : targets)
    if (!filled.count(name)) r.missing.push_back(name);

  const std::string& what = r.file;
  if (!prefix.empty() && file_keys.empty()) {
    std::vector<std::string> all;
    for (const auto& t : file.tensors) all.push_back(t.first);
    throw ConfigError(what + ": model.pretrained_prefix = '" + prefix + "' matches none of its " +
                      std::to_string(r.file_tensors) + " keys (" + first_keys(all) + ")");
  }
  if (r.loaded_tensors == 0)
    throw ConfigError(what + ": none of its " + std::to_string(file_keys.size()) + " tensors fits the model (file " +
                      first_keys(file_keys) + "; model " + first_keys(r.missing) + ")" +
                      (r.skipped.empty() ? "" : "; shapes differ: " + first_keys(r.skipped, 2)));
  if (strict && !(r.missing.empty() && r.skipped.empty() && r.unexpected.empty()))
    throw ConfigError(
        what + " with model.pretrained_strict: " +
        (r.missing.empty() ? "" : std::to_string(r.missing.size()) + " missing (" + first_keys(r.missing) + ") ") +
        (r.skipped.empty() ? "" : std::to_string(r.skipped.size()) + " skipped (" + first_keys(r.skipped, 1) + ") ") +
        (r.unexpected.empty()
             ? ""
             : std::to_string(r.unexpected.size()) + " unexpected (" + first_keys(r.unexpected) + ")"));
  return r;
}

std::string torchvision_resnet_name(const std::string& name) {
  if (name.rfind("head.", 0) == 0) return "fc." + name.substr(5);
  std::string out = "." + (name.rfind("backbone.", 0) == 0 ? name.substr(9) : name);
  replace_all(out, ".shortcut.", ".downsample.");
  return out.substr(1);
}

namespace {

// The inverse of mobilenet_v2_name(): our name (under the classifier) as
// torchvision's MobileNetV2 names it. `blocks`: how many inverted residual
// blocks the model has (the last conv is features.<blocks + 1>); `expanded(b)`:
// whether block b has the 1x1 expansion conv.
std::string torchvision_mobilenet_v2_name(const std::string& name, int64_t blocks,
                                          const std::function<bool(int64_t)>& expanded) {
  if (name.rfind("head.", 0) == 0) return "classifier.1." + name.substr(5);
  const std::string rest = name.rfind("backbone.", 0) == 0 ? name.substr(9) : name;
  const auto top = [&rest](const std::string& module) { return rest.rfind(module + ".", 0) == 0; };
  const auto param = [&rest](size_t skip) { return rest.substr(skip); };
  if (top("conv1")) return "features.0.0." + param(6);
  if (top("bn1")) return "features.0.1." + param(4);
  if (top("conv2")) return "features." + std::to_string(blocks + 1) + ".0." + param(6);
  if (top("bn2")) return "features." + std::to_string(blocks + 1) + ".1." + param(4);
  const auto [b, inside] = leading_index(rest.substr(7));  // after "layers."
  const std::string block = "features." + std::to_string(b + 1) + ".conv.";
  const int64_t shift = expanded(b) ? 0 : 1;  // conv.0 is conv1 when expanded, conv2 when not
  const std::string module = inside.substr(0, inside.find('.'));
  const std::string tail = inside.substr(module.size() + 1);
  const int64_t position = module.back() - '1';  // conv1/bn1 -> 0, conv2/bn2 -> 1, conv3/bn3 -> 2
  const bool conv = module.rfind("conv", 0) == 0;
  if (position <= 1) return block + std::to_string(position - shift) + (conv ? ".0." : ".1.") + tail;
  return block + std::to_string(2 - shift + (conv ? 0 : 1)) + "." + tail;
}

}  // namespace

bool has_torchvision_mobilenet_v2_layout(torch::nn::Module& model) {
  bool blocks = false;
  for (const auto& p : model.named_parameters()) {
    const std::string& name = p.key();
    if (name.find(".shortcut.") != std::string::npos || name.rfind("backbone.layers.0.conv1.", 0) == 0) return false;
    blocks = blocks || name.rfind("backbone.layers.", 0) == 0;
  }
  return blocks;
}

std::vector<std::pair<std::string, at::Tensor>> named_tensors(torch::nn::Module& model, TensorNames names) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : model.named_parameters()) tensors.emplace_back(p.key(), p.value());
  for (const auto& b : model.named_buffers()) tensors.emplace_back(b.key(), b.value());
  if (names == TensorNames::kTorchvisionResNet)
    for (auto& [name, tensor] : tensors) name = torchvision_resnet_name(name);
  if (names == TensorNames::kTorchvisionMobileNetV2) {
    check<ConfigError>(has_torchvision_mobilenet_v2_layout(model),
                       "torchvision's MobileNetV2 names need the reference variant's layout");
    std::set<std::string> ours;
    int64_t blocks = 0;
    for (const auto& [name, tensor] : tensors) {
      ours.insert(name);
      if (name.rfind("backbone.layers.", 0) == 0) blocks = std::max(blocks, leading_index(name.substr(16)).first + 1);
    }
    const auto expanded = [&ours](int64_t b) {
      return ours.count("backbone.layers." + std::to_string(b) + ".conv1.weight") > 0;
    };
    for (auto& [name, tensor] : tensors) name = torchvision_mobilenet_v2_name(name, blocks, expanded);
  }
  return tensors;
}

std::string describe(const PretrainedReport& r) {
  std::ostringstream os;
  os << "pretrained: " << r.file << " (" << r.format << "): loaded " << r.loaded_tensors << " of the model's "
     << r.model_tensors << " tensors (" << r.loaded_parameters << " parameters), " << r.missing.size() << " missing, "
     << r.skipped.size() << " skipped (shapes differ), " << r.unexpected.size() << " unexpected";
  if (!r.prefix.empty()) os << "; prefix '" << r.prefix << "' stripped, " << r.outside_prefix << " tensors outside it";
  if (r.renamed > 0) os << "; " << r.renamed << " matched through torchvision's names or under backbone.";
  if (!r.skipped.empty()) os << "; skipped " << first_keys(r.skipped, 2);
  if (!r.missing.empty()) os << "; missing " << first_keys(r.missing);
  return os.str();
}

nlohmann::json to_json(const PretrainedReport& r) {
  return {{"file", r.file},
          {"format", r.format},
          {"prefix", r.prefix},
          {"strict", r.strict},
          {"file_tensors", r.file_tensors},
          {"outside_prefix", r.outside_prefix},
          {"model_tensors", r.model_tensors},
          {"loaded_tensors", r.loaded_tensors},
          {"loaded_parameters", r.loaded_parameters},
          {"renamed", r.renamed},
          {"missing", r.missing},
          {"skipped", r.skipped},
          {"unexpected", r.unexpected}};
}

}  // namespace sscl
