// SI, Synaptic Intelligence (Zenke, Poole & Ganguli, ICML 2017). Each parameter's
// importance is its share of the drop of the task loss along the training path,
//   omega_k = -sum_t g_k(t) * delta_k(t)                         (Eq. 3, discretised)
// with delta(t) the change the optimizer really made at step t. The reference
// (mammoth) adds lr * g^2 instead, which equals -g * delta only for plain SGD
// without momentum or weight decay. At a task end (Eq. 5)
//   Omega_k <- max(0, Omega_k + omega_k / (Delta_k^2 + xi))
// with Delta the parameter change over the whole task, and the next tasks pay
//   c * sum_k Omega_k * (theta_k - theta*_k)^2                   (Eq. 4).
// The clamp at zero is the original code's (pathint, protocols.py): with momentum a
// parameter's path integral can be negative, and a negative Omega would reward
// drifting away from theta*. g is the gradient of the task loss alone, as in the
// original code ("unreg_grads"): after_backward holds the total gradient and we
// subtract the penalty's own, 2 c Omega (theta - theta*), which is exact and cheap.
//
// Parameters only: BatchNorm running statistics are buffers that no gradient
// moves, so they have no path integral; they keep adapting to each task, as in the
// reference (whose get_params() covers parameters only).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "core/method.h"

namespace sscl {

struct SiOptions {
  double c = 0.5;  // mammoth's best for Seq-CIFAR-10
  double xi = 1.0;
  static void declare(OptionSpec<SiOptions>& o) {
    o.key("c", &SiOptions::c, "strength of the surrogate loss").min(0);
    o.key("xi", &SiOptions::xi, "damping of Omega's denominator (keeps it away from zero)").above(0);
  }
};

// One optimizer step of the path integral: omega - grad * delta.
at::Tensor si_path_step(const at::Tensor& omega, const at::Tensor& grad, const at::Tensor& delta);

// Task-end consolidation: max(0, big_omega + omega / (task_delta^2 + xi)).
at::Tensor si_consolidate(const at::Tensor& big_omega, const at::Tensor& omega, const at::Tensor& task_delta,
                          double xi);

// The task loss's gradient: the total gradient minus that of the surrogate loss,
// total_grad - 2 c Omega (theta - theta*).
at::Tensor si_task_gradient(const at::Tensor& total_grad, const at::Tensor& big_omega, const at::Tensor& theta,
                            const at::Tensor& anchor, double c);

class Si : public Method {
 public:
  explicit Si(SiOptions options) : options_(options) {
    traits_.composes_with_semi = true;
    traits_.distributed = true;  // its path integral reads the gradients after they are averaged
  }

  std::string name() const override { return "si"; }
  LossTerms step(const TrainBatch& batch, const RunState& state) override;
  void before_task(const RunState& state) override;
  void after_backward(const RunState& state) override;
  void after_iter(const RunState& state) override;
  void after_task(const RunState& state) override;

  std::vector<std::pair<std::string, double>> stats() const override;
  void visit_state(StateVisitor& s) override;

  // Per parameter, in model()->parameters() order; empty before they exist.
  const std::vector<torch::Tensor>& path_integral() const { return omega_; }   // omega of the running task
  const std::vector<torch::Tensor>& importance() const { return big_omega_; }  // Omega; empty before task 0 ends
  const std::vector<torch::Tensor>& anchor() const { return anchor_; }         // theta* of the last task end

 private:
  std::vector<torch::Tensor> params() const;

  SiOptions options_;
  int started_task_ = -1;                  // the task that task_start_ and omega_ belong to
  std::vector<torch::Tensor> task_start_;  // theta when that task began
  std::vector<torch::Tensor> omega_;
  std::vector<torch::Tensor> big_omega_;
  std::vector<torch::Tensor> anchor_;
  // Between after_backward and after_iter of one iteration: the task gradient and
  // theta before the optimizer step.
  std::vector<torch::Tensor> step_grad_;
  std::vector<torch::Tensor> step_before_;
};

}  // namespace sscl
