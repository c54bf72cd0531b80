#include "core/nn/pretrained.h"

#include <torch/torch.h>

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

// The model keys a file key may stand for, most literal first.
std::vector<std::string> candidates(const std::string& key) {
  std::string aliased = "." + key;
  replace_all(aliased, ".downsample.", ".shortcut.");
  aliased.erase(0, 1);
  for (const std::string head : {"fc.", "classifier.1."})
    if (aliased.rfind(head, 0) == 0) return {key, "head." + aliased.substr(head.size())};
  std::vector<std::string> out{key};
  if (aliased != key) out.push_back(aliased);
  out.push_back("backbone." + aliased);
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

  std::set<std::string> filled;
  std::vector<std::string> file_keys;
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : file.tensors) {
    if (!prefix.empty() && name.rfind(prefix, 0) != 0) {
      ++r.outside_prefix;
      continue;
    }
    const std::string key = name.substr(prefix.size());
    file_keys.push_back(key);
    const auto names = candidates(key);
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

std::vector<std::pair<std::string, at::Tensor>> named_tensors(torch::nn::Module& model, bool torchvision_resnet_names) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : model.named_parameters()) tensors.emplace_back(p.key(), p.value());
  for (const auto& b : model.named_buffers()) tensors.emplace_back(b.key(), b.value());
  if (torchvision_resnet_names)
    for (auto& [name, tensor] : tensors) name = torchvision_resnet_name(name);
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
