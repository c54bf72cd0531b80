// Small pieces of maths the semi-supervised losses share: sharpening, soft-target
// cross-entropy that tolerates masked (-inf) logits, and mixup.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace sscl {

class Rng;

// p^(1/T) renormalised per row (MixMatch, UDA). Zero probabilities stay zero.
at::Tensor sharpen(const at::Tensor& probs, double temperature);

// Per-row -sum_c target_c * log_softmax(logits)_c, [N]. Classes whose target is 0
// contribute 0 even where the logit is -inf (a task-masked class), instead of NaN.
at::Tensor soft_cross_entropy(const at::Tensor& logits, const at::Tensor& targets);

// One-hot rows [N, num_classes] of int64 labels, float.
at::Tensor one_hot_float(const at::Tensor& labels, int64_t num_classes);

// MixMatch's coefficient: lambda ~ Beta(alpha, alpha), then max(lambda, 1 - lambda)
// so that the mixed input stays closer to its first operand.
double mixmatch_lambda(double alpha, Rng& rng);

// lambda * a + (1 - lambda) * b (images or targets).
at::Tensor mix(const at::Tensor& a, const at::Tensor& b, double lambda);

}  // namespace sscl
