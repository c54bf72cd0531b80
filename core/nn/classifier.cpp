#include "core/nn/classifier.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.h"

namespace sscl {

SSCL_DEFINE_REGISTRY(BackboneRegistry, "backbone", "model")

ClassifierImpl::ClassifierImpl(std::shared_ptr<Backbone> backbone, int64_t num_classes)
    : backbone_(register_module("backbone", std::move(backbone))), num_classes_(num_classes) {
  head_ = register_module("head", torch::nn::Linear(backbone_->feature_dim(), num_classes));
}

ClassifierImpl::ClassifierImpl(std::shared_ptr<Backbone> backbone, int64_t num_classes,
                               const std::vector<std::vector<int64_t>>& task_classes)
    : backbone_(register_module("backbone", std::move(backbone))), num_classes_(num_classes) {
  std::vector<int> owner(static_cast<size_t>(num_classes), -1);
  for (size_t t = 0; t < task_classes.size(); ++t)
    for (int64_t c : task_classes[t]) {
      check<Error>(c >= 0 && c < num_classes && owner[c] < 0,
                   "multi-head classifier: class " + std::to_string(c) + " out of range or in two tasks");
      owner[c] = static_cast<int>(t);
    }
  for (int64_t c = 0; c < num_classes; ++c)
    check<Error>(owner[c] >= 0, "multi-head classifier: class " + std::to_string(c) + " is in no task");
  heads_ = register_module("heads", torch::nn::ModuleList());
  for (const auto& classes : task_classes) {
    heads_->push_back(torch::nn::Linear(backbone_->feature_dim(), static_cast<int64_t>(classes.size())));
    // A buffer, so that it follows the model to its device and into checkpoints.
    head_classes_.push_back(register_buffer("head_classes_" + std::to_string(head_classes_.size()),
                                            at::tensor(at::ArrayRef<int64_t>(classes), at::kLong)));
  }
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& images) {
  return head(backbone_->forward(in_memory_order(images)));
}

torch::Tensor ClassifierImpl::features(const torch::Tensor& images) {
  return backbone_->forward(in_memory_order(images));
}

torch::Tensor ClassifierImpl::in_memory_order(const torch::Tensor& images) const {
  return channels_last_ && images.dim() == 4 ? images.contiguous(at::MemoryFormat::ChannelsLast) : images;
}

bool ClassifierImpl::set_channels_last() {
  bool any = false;
  torch::NoGradGuard no_grad;
  for (auto& p : parameters())
    if (p.dim() == 4) {
      p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
      any = true;
    }
  channels_last_ = any;
  return any;
}

void ClassifierImpl::freeze(const std::vector<std::string>& modules) {
  const auto named = named_modules("", /*include_self=*/false);
  for (const auto& name : modules) {
    const auto* module = named.find(name);
    check<Error>(module != nullptr, "classifier: no module '" + name + "' to freeze");
    if (std::find(frozen_names_.begin(), frozen_names_.end(), name) != frozen_names_.end()) continue;
    for (auto& p : (*module)->parameters()) {
      p.set_requires_grad(false);
      p.mutable_grad() = torch::Tensor();
    }
    (*module)->eval();
    frozen_names_.push_back(name);
    frozen_.push_back(*module);
  }
}

void ClassifierImpl::train(bool on) {
  torch::nn::Module::train(on);
  for (auto& module : frozen_) module->eval();
}

std::vector<std::string> modules_to_freeze(const Backbone& backbone, bool freeze_backbone, int64_t frozen_stages) {
  if (freeze_backbone) {
    check<Error>(frozen_stages < 0, "model.freeze = \"backbone\" already freezes every stage");
    return {"backbone"};
  }
  if (frozen_stages < 0) return {};
  const auto stages = backbone.stage_modules();
  check<Error>(!stages.empty(), "this backbone has no stages to freeze (model.freeze = \"backbone\" freezes it whole)");
  check<Error>(frozen_stages < static_cast<int64_t>(stages.size()),
               std::to_string(frozen_stages) + " is past the backbone's last stage, " +
                   std::to_string(stages.size() - 1) + " (0 is the stem)");
  std::vector<std::string> modules;
  for (int64_t s = 0; s <= frozen_stages; ++s)
    for (const auto& name : stages[s]) modules.push_back("backbone." + name);
  return modules;
}

torch::Tensor ClassifierImpl::head(const torch::Tensor& features) {
  if (!heads_) return head_(features);
  // The heads' outputs side by side, then their columns put in class order: no
  // size is read from `features`, so a traced export takes any batch size.
  // index_select is differentiable: each head gets the gradient of its own columns.
  std::vector<torch::Tensor> outputs;
  for (size_t t = 0; t < heads_->size(); ++t)
    outputs.push_back(heads_[t]->as<torch::nn::LinearImpl>()->forward(features));
  const auto column_of_class = at::cat(head_classes_).argsort();
  return at::cat(outputs, 1).index_select(1, column_of_class);
}

}  // namespace sscl
