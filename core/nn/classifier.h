#pragma once

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include <memory>
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

 private:
  torch::Tensor in_memory_order(const torch::Tensor& images) const;

  std::shared_ptr<Backbone> backbone_;
  torch::nn::Linear head_{nullptr};          // single head
  torch::nn::ModuleList heads_{nullptr};     // multi-head
  std::vector<torch::Tensor> head_classes_;  // class ids of each head (int64)
  int64_t num_classes_;
  bool channels_last_ = false;
};
TORCH_MODULE(Classifier);

}  // namespace sscl
