#include "methods/semi/semi_math.h"

#include <torch/torch.h>

#include <algorithm>

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

}  // namespace sscl
