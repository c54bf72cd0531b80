// LwF, Learning without Forgetting (Li & Hoiem, ECCV 2016 / TPAMI 2017). At each
// task end the model is frozen as a teacher; on later tasks
//   loss = CE(current task) + alpha * KD,
// with KD the distillation between the teacher's and the model's logits of the
// current batch's images, restricted to the old tasks' classes:
//   KD = T^2 * mean_i KL( softmax(z_old_i / T) || softmax(z_new_i / T) )
// (Hinton et al. 2015). KL differs from LwF's cross-entropy with softened targets
// only by the teacher's entropy, a constant: same gradient, but KD = 0 when the
// model reproduces the teacher. The T^2 factor keeps the gradient's scale,
// T * (q - p), independent of T as T grows (Hinton's Sec. 2), so alpha means the
// same at any temperature.
//
// Which softmax: when training logits are masked per task (method.train_mask, the
// task-IL default), every old task has its own softmax over its own classes, as the
// paper's one head per old task, and the KD terms of the old tasks are summed (the
// paper's L_old per old task); otherwise one softmax over all old classes
// (class-IL, as the reference). The teacher runs in eval mode (frozen BN statistics)
// on the same augmented images as the model.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "core/method.h"
#include "methods/common/model_copy.h"

namespace sscl {

struct LwfOptions {
  double alpha = 1.0;
  double temperature = 2.0;
  static void declare(OptionSpec<LwfOptions>& o) {
    o.key("alpha", &LwfOptions::alpha, "weight of the distillation term").min(0);
    o.key("temperature", &LwfOptions::temperature, "T of the softened softmax (the paper's T = 2)").above(0);
  }
};

// T^2 * mean over rows of KL(softmax(old/T) || softmax(new/T)), both restricted to
// the columns where `classes` (bool [C]) is true. `old_logits` are treated as
// constants. Zero when no class or no row is selected.
at::Tensor distillation_loss(const at::Tensor& new_logits, const at::Tensor& old_logits, const at::Tensor& classes,
                             double temperature);

// The sum of distillation_loss over class groups (one bool [C] mask each).
at::Tensor grouped_distillation_loss(const at::Tensor& new_logits, const at::Tensor& old_logits,
                                     const std::vector<at::Tensor>& groups, double temperature);

class Lwf : public Method {
 public:
  explicit Lwf(LwfOptions options) : options_(options) {
    traits_.composes_with_semi = true;
    traits_.needs_plain_labeled_pass = true;  // distils from its logits
    traits_.distributed = true;               // its teacher is a copy of the model, the same on every rank
  }

  std::string name() const override { return "lwf"; }
  void attach(MethodContext context) override;
  LossTerms step(const TrainBatch& batch, const RunState& state) override;
  void after_task(const RunState& state) override;

  std::vector<std::pair<std::string, double>> stats() const override {
    return {{"teacher_bytes", copy_bytes(teacher_)}};
  }
  void visit_state(StateVisitor& s) override {
    s.optional_module("teacher", teacher_, [this] { return frozen_copy(model(), context()); });
  }

  // The model as it was at the end of the previous task; null during task 0.
  Classifier& teacher() { return teacher_; }
  // The class groups distilled while training `task` (empty for task 0).
  std::vector<torch::Tensor> old_class_groups(int task) const;

 private:
  LwfOptions options_;
  Classifier teacher_{nullptr};
  std::vector<torch::Tensor> task_class_masks_;  // bool [C] per task, on the device
};

}  // namespace sscl
