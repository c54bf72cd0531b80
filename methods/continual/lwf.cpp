#include "methods/continual/lwf.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

namespace sscl {

at::Tensor distillation_loss(const at::Tensor& new_logits, const at::Tensor& old_logits, const at::Tensor& classes,
                             double temperature) {
  const auto columns = classes.to(new_logits.device(), torch::kBool).nonzero().flatten();
  if (columns.numel() == 0 || new_logits.size(0) == 0) return new_logits.sum() * 0.0;  // zero, still on the graph
  const auto log_q = torch::log_softmax(new_logits.index_select(1, columns) / temperature, 1);
  const auto log_p =
      torch::log_softmax(old_logits.detach().to(new_logits.dtype()).index_select(1, columns) / temperature, 1);
  const auto kl = (log_p.exp() * (log_p - log_q)).sum(1).mean();
  return temperature * temperature * kl;
}

at::Tensor grouped_distillation_loss(const at::Tensor& new_logits, const at::Tensor& old_logits,
                                     const std::vector<at::Tensor>& groups, double temperature) {
  at::Tensor total = new_logits.sum() * 0.0;
  for (const auto& group : groups) total = total + distillation_loss(new_logits, old_logits, group, temperature);
  return total;
}

void Lwf::attach(MethodContext context) {
  Method::attach(std::move(context));
  task_class_masks_.clear();
  const int64_t num_classes = this->context().model->num_classes();
  for (const auto& classes : this->context().task_classes) {
    auto mask = torch::zeros({num_classes}, torch::kBool);
    for (int64_t c : classes) mask[c] = true;
    task_class_masks_.push_back(mask.to(this->context().device));
  }
}

std::vector<torch::Tensor> Lwf::old_class_groups(int task) const {
  std::vector<torch::Tensor> groups;
  if (task <= 0) return groups;
  if (context().mask_train_logits) {
    for (int t = 0; t < task; ++t) groups.push_back(task_class_masks_.at(t));
    return groups;
  }
  auto old = task_class_masks_.at(0).clone();
  for (int t = 1; t < task; ++t) old = old.logical_or(task_class_masks_.at(t));
  groups.push_back(old);
  return groups;
}

LossTerms Lwf::step(const TrainBatch& batch, const RunState& state) {
  auto current = forward_current(batch, state);
  const auto logits = current.labeled_logits;
  LossTerms terms = std::move(current.terms);
  if (!teacher_ || batch.task == 0) {
    terms.emplace_back("kd", logits.sum() * 0.0);
    return terms;
  }
  torch::Tensor old_logits;
  {
    torch::NoGradGuard no_grad;
    old_logits = teacher_->forward(batch.labeled.images);
  }
  const auto kd = grouped_distillation_loss(logits, old_logits, old_class_groups(batch.task), options_.temperature);
  terms.emplace_back("kd", options_.alpha * kd);
  return terms;
}

void Lwf::after_task(const RunState&) { teacher_ = frozen_copy(model(), context()); }

SSCL_REGISTER_METHOD("lwf", Lwf, LwfOptions{},
                     "LwF: distils the previous task's model on the old classes' logits of the current images");

}  // namespace sscl
