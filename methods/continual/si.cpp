#include "methods/continual/si.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include "core/error.h"
#include "methods/continual/regularization.h"

namespace sscl {

at::Tensor si_path_step(const at::Tensor& omega, const at::Tensor& grad, const at::Tensor& delta) {
  return omega - grad * delta;
}

at::Tensor si_consolidate(const at::Tensor& big_omega, const at::Tensor& omega, const at::Tensor& task_delta,
                          double xi) {
  return (big_omega + omega / (task_delta.pow(2) + xi)).clamp_min(0.0);
}

at::Tensor si_task_gradient(const at::Tensor& total_grad, const at::Tensor& big_omega, const at::Tensor& theta,
                            const at::Tensor& anchor, double c) {
  return total_grad - 2.0 * c * big_omega * (theta - anchor);
}

std::vector<torch::Tensor> Si::params() const { return context().model->parameters(); }

LossTerms Si::step(const TrainBatch& batch, const RunState& state) {
  LossTerms terms = forward_current(batch, state).terms;
  terms.emplace_back("penalty", quadratic_penalty(params(), anchor_, big_omega_, options_.c));
  return terms;
}

void Si::before_task(const RunState& state) {
  // A run resumed inside a task has its start and path integral restored already.
  if (started_task_ == state.task) return;
  torch::NoGradGuard no_grad;
  task_start_ = detached_copies(params());
  omega_ = zeros_like_all(task_start_);
  started_task_ = state.task;
}

void Si::after_backward(const RunState&) {
  torch::NoGradGuard no_grad;
  const auto theta = params();
  step_grad_.clear();
  step_before_.clear();
  for (size_t k = 0; k < theta.size(); ++k) {
    const auto& g = theta[k].grad();
    auto grad = g.defined() ? g.detach().clone() : torch::zeros_like(theta[k]);
    if (!big_omega_.empty()) grad = si_task_gradient(grad, big_omega_[k], theta[k].detach(), anchor_[k], options_.c);
    step_grad_.push_back(grad);
    step_before_.push_back(theta[k].detach().clone());
  }
}

void Si::after_iter(const RunState&) {
  if (step_grad_.empty()) return;
  check<TrainingError>(!omega_.empty(), "si: an optimizer step happened before any task began");
  torch::NoGradGuard no_grad;
  const auto theta = params();
  for (size_t k = 0; k < theta.size(); ++k)
    omega_[k] = si_path_step(omega_[k], step_grad_[k], theta[k].detach() - step_before_[k]);
  step_grad_.clear();
  step_before_.clear();
}

void Si::after_task(const RunState&) {
  check<TrainingError>(!omega_.empty(), "si: a task ended that never began");
  torch::NoGradGuard no_grad;
  const auto theta = params();
  if (big_omega_.empty()) big_omega_ = zeros_like_all(theta);
  for (size_t k = 0; k < theta.size(); ++k)
    big_omega_[k] = si_consolidate(big_omega_[k], omega_[k], theta[k].detach() - task_start_[k], options_.xi);
  anchor_ = detached_copies(theta);
  for (auto& w : omega_) w.zero_();
}

std::vector<std::pair<std::string, double>> Si::stats() const {
  return {{"importance_bytes", total_bytes(big_omega_)},
          {"anchor_bytes", total_bytes(anchor_)},
          {"path_integral_bytes", total_bytes(omega_) + total_bytes(task_start_)}};
}

void Si::visit_state(StateVisitor& s) {
  s("started_task", started_task_);
  s("task_start", task_start_, Place::kDevice);
  s("omega", omega_, Place::kDevice);
  s("big_omega", big_omega_, Place::kDevice);
  s("anchor", anchor_, Place::kDevice);
  if (!s.loading()) return;
  step_grad_.clear();  // only ever filled within one iteration
  step_before_.clear();
}

SSCL_REGISTER_METHOD("si", Si, SiOptions{},
                     "SI: path-integral importances penalise drift from the last task's parameters");

}  // namespace sscl
