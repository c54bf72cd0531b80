#pragma once

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include <memory>
#include <string>
#include <vector>

#include "core/nn/backbone.h"

namespace sscl {

// Backbone + linear head(s). Scenarios mask the logits at evaluation (task-IL: the
// task's classes; class-IL: the classes seen).
//
// Single head (default): one Linear over all classes of the dataset.
// Multi-head (model.multi_head, for task-IL methods): one Linear per task over
// that task's classes; their outputs are scattered into one [N, num_classes]
// logits tensor at the tasks' class ids, so every method and metric sees the same
// shape either way.
class ClassifierImpl : public torch::nn::Module {
 public:
  ClassifierImpl(std::shared_ptr<Backbone> backbone, int64_t num_classes);
  // task_classes[t]: the class ids of task t, disjoint, together covering 0..num_classes-1.
  ClassifierImpl(std::shared_ptr<Backbone> backbone, int64_t num_classes,
                 const std::vector<std::vector<int64_t>>& task_classes);

  torch::Tensor forward(const torch::Tensor& images);   // logits [N, num_classes]
  torch::Tensor features(const torch::Tensor& images);  // backbone output
  torch::Tensor head(const torch::Tensor& features);    // logits from features

  Backbone& backbone() { return *backbone_; }
  int64_t num_classes() const { return num_classes_; }
  int64_t num_heads() const { return heads_ ? static_cast<int64_t>(heads_->size()) : 1; }
  bool multi_head() const { return static_cast<bool>(heads_); }
  // model.channels_last: 4-D weights now, and every image batch at forward(),
  // features(), in NHWC order. False (nothing changed) when no weight is 4-D.
  bool set_channels_last();
  bool channels_last() const { return channels_last_; }

  // model.freeze, model.frozen_stages: the named modules (under the classifier:
  // "backbone", "backbone.layer1") stop training. Their parameters lose
  // requires_grad, and they stay in eval mode whatever train() asks, so their
  // BatchNorm statistics stay as they are too. Error naming a module that does
  // not exist. Call it after any pass that replaces modules (sync_bn).
  void freeze(const std::vector<std::string>& modules);
  const std::vector<std::string>& frozen_modules() const { return frozen_names_; }
  void train(bool on = true) override;

 private:
  torch::Tensor in_memory_order(const torch::Tensor& images) const;

  std::shared_ptr<Backbone> backbone_;
  torch::nn::Linear head_{nullptr};          // single head
  torch::nn::ModuleList heads_{nullptr};     // multi-head
  std::vector<torch::Tensor> head_classes_;  // class ids of each head (int64)
  int64_t num_classes_;
  bool channels_last_ = false;
  std::vector<std::string> frozen_names_;
  std::vector<std::shared_ptr<torch::nn::Module>> frozen_;
};
TORCH_MODULE(Classifier);

// The modules that model.freeze = "backbone" (`freeze_backbone`) or
// model.frozen_stages (-1: none; N >= 0: the stem and the first N stages,
// mmcls's meaning, through Backbone::stage_modules()) name, under the
// classifier. Error when the backbone has no stages, fewer than asked, or both
// are set.
std::vector<std::string> modules_to_freeze(const Backbone& backbone, bool freeze_backbone, int64_t frozen_stages);

}  // namespace sscl
