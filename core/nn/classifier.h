#pragma once

#include <torch/nn/modules/linear.h>

#include <memory>

#include "core/nn/backbone.h"

namespace sscl {

// Backbone + linear head over all classes of the dataset. Scenarios mask the
// logits at evaluation (task-IL: the task's classes; class-IL: the classes seen).
class ClassifierImpl : public torch::nn::Module {
 public:
  ClassifierImpl(std::shared_ptr<Backbone> backbone, int64_t num_classes);

  torch::Tensor forward(const torch::Tensor& images);   // logits
  torch::Tensor features(const torch::Tensor& images);  // backbone output
  torch::Tensor head(const torch::Tensor& features);    // logits from features

  Backbone& backbone() { return *backbone_; }
  int64_t num_classes() const { return num_classes_; }

 private:
  std::shared_ptr<Backbone> backbone_;
  torch::nn::Linear head_{nullptr};
  int64_t num_classes_;
};
TORCH_MODULE(Classifier);

}  // namespace sscl
