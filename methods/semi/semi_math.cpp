#include "methods/semi/semi_math.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/method.h"
#include "core/random.h"

namespace sscl {

at::Tensor sharpen(const at::Tensor& probs, double temperature) {
  const auto powered = probs.pow(1.0 / temperature);
  return powered / powered.sum(1, /*keepdim=*/true);
}

at::Tensor soft_cross_entropy(const at::Tensor& logits, const at::Tensor& targets) {
  // Zero the log-probabilities where the target is 0 first: 0 * -inf would be NaN.
  const auto log_probs = torch::log_softmax(logits, 1).masked_fill(targets <= 0, 0.0);
  return -(targets * log_probs).sum(1);
}

at::Tensor one_hot_float(const at::Tensor& labels, int64_t num_classes) {
  return torch::one_hot(labels, num_classes).to(torch::kFloat);
}

double mixmatch_lambda(double alpha, Rng& rng) {
  const double lambda = rng.beta(alpha, alpha);
  return std::max(lambda, 1.0 - lambda);
}

at::Tensor mix(const at::Tensor& a, const at::Tensor& b, double lambda) { return lambda * a + (1.0 - lambda) * b; }

double unsup_warmup(int64_t iter, int64_t iters_per_task, double fraction) {
  const double span = fraction * static_cast<double>(iters_per_task);
  if (span <= 0) return 1.0;
  return std::clamp(static_cast<double>(iter) / span, 0.0, 1.0);
}

at::Tensor softmax_mse(const at::Tensor& logits, const at::Tensor& targets, int64_t num_classes) {
  return (torch::softmax(logits, 1) - targets).pow(2).sum(1) / static_cast<double>(std::max<int64_t>(num_classes, 1));
}

int64_t classes_in_play(const Method& method, int task) {
  const auto& context = method.context();
  return context.mask_train_logits ? static_cast<int64_t>(method.task_classes(task).size())
                                   : context.model->num_classes();
}

at::Tensor classes_in_play_mask(const Method& method, int task) {
  const auto& context = method.context();
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(context.device);
  const int64_t k = context.model->num_classes();
  if (!context.mask_train_logits) return torch::ones({k}, options);
  const auto classes = torch::tensor(method.task_classes(task), torch::kLong).to(context.device);
  return torch::zeros({k}, options).index_fill_(0, classes, 1.0);
}

}  // namespace sscl
