// Small pieces of maths the semi-supervised losses share: sharpening, soft-target
// cross-entropy that tolerates masked (-inf) logits, mixup, the unlabeled weight's
// warm-up, the softmax MSE and the classes a task's maths runs over.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace sscl {

class Method;
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

// clip(iter / (fraction * iters_per_task), 0, 1), restarting every task (fraction 0:
// 1 throughout): USB's linear warm-up of Pseudo-Label's, Mean Teacher's and MixMatch's unlabeled weight.
double unsup_warmup(int64_t iter, int64_t iters_per_task, double fraction);

// Per row sum_c (softmax(logits)_c - targets_c)^2 / num_classes, [N]; masked (-inf)
// classes with target 0 add nothing: Mean Teacher's consistency and MixMatch's unlabeled term.
at::Tensor softmax_mse(const at::Tensor& logits, const at::Tensor& targets, int64_t num_classes);

// The number of classes with a probability at `task`: the task's under the task mask
// (the others' logits are -inf), all the model's otherwise; the K of UDA's TSA and the C of the MSEs.
int64_t classes_in_play(const Method& method, int task);

// [K] float 0/1 on the run's device, 1 at the classes in play (as classes_in_play):
// FreeMatch and SoftMatch start their per-class states at 1/C over them.
at::Tensor classes_in_play_mask(const Method& method, int task);

}  // namespace sscl
