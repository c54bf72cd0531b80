// SoftMatch (Chen et al., ICLR 2023): instead of a hard threshold, each unlabeled
// image's hard pseudo-label is weighted by a truncated Gaussian of its confidence
//   w(p) = exp(-(max p - mu_t)^2 / (2 sigma_t^2 / n_sigma^2))  if max p < mu_t,  1 otherwise,
// where mu_t and sigma_t^2 are EMAs of the batch mean and (unbiased) variance of
// the confidence, starting at 1/C and 1. With uniform distribution alignment (on
// by default) the confidence is measured on p * (u + eps) / (p_model + eps)
// renormalised, p_model the EMA of the mean weak prediction (the first batch's
// mean at first) and u uniform over the C classes; the pseudo-label itself is the
// argmax of the unaligned prediction, as in the reference (USB's SoftMatch with
// SoftMatchWeightingHook and DistAlignEMAHook).
//
// Continual setting: mu, sigma^2 and p_model describe the current task's pool and
// classes, so they start again with each task (C: the task's classes under the
// task mask, all classes otherwise).
#pragma once

#include <ATen/core/Tensor.h>

#include "core/options.h"

namespace sscl {

struct SoftMatchOptions {
  double lambda_u = 1.0;
  double n_sigma = 2.0;         // USB's n_sigma
  double ema_momentum = 0.999;  // the paper's m, USB's ema_p
  bool dist_align = true;       // uniform distribution alignment
  bool concat_forward = true;   // see methods/semi/weak_strong_loss.h
  static void declare(OptionSpec<SoftMatchOptions>& o);
};

// What the loss carries across iterations, on the device.
struct SoftMatchState {
  at::Tensor mean;      // mu_t, scalar
  at::Tensor variance;  // sigma_t^2, scalar
  at::Tensor p_target;  // [K] uniform over the C classes
  at::Tensor p_model;   // [K] EMA of the mean weak prediction; undefined before the first batch
};

// mu_0 = 1/C, sigma_0^2 = 1, p_target = 1/C on the C classes where
// `class_support` ([K], 0/1) is 1 and 0 elsewhere; no p_model yet.
SoftMatchState softmatch_initial_state(const at::Tensor& class_support);

// One EMA step (momentum m) from the confidences [U]:
//   mu_t = m mu_{t-1} + (1 - m) mean(conf),  sigma_t^2 = m sigma_{t-1}^2 + (1 - m) var_unbiased(conf).
// With U < 2 the variance is undefined and keeps its value.
void softmatch_update_gaussian(SoftMatchState& state, const at::Tensor& confidence, double momentum);

// The truncated Gaussian weights [U] of the confidences [U].
at::Tensor softmatch_weights(const at::Tensor& confidence, const at::Tensor& mean, const at::Tensor& variance,
                             double n_sigma);

// p_i * (target + 1e-6) / (p_model + 1e-6), each row renormalised (probs [U, K]).
at::Tensor distribution_alignment(const at::Tensor& probs, const at::Tensor& p_model, const at::Tensor& p_target);

struct SoftMatchTerm {
  at::Tensor loss;          // mean over all U of w_i * CE(strong_i, pseudo_label_i) (unweighted by lambda_u)
  at::Tensor weights;       // [U]
  at::Tensor pseudo_label;  // [U] argmax of the unaligned weak prediction
};

// One iteration: p_model (when aligning) and the Gaussian take this batch first,
// then its images are weighted (the reference's order). In a distributed run
// `weak_all` holds every rank's detached weak logits (the global batch), which
// p_model and the Gaussian take instead of this rank's.
SoftMatchTerm softmatch_step(const at::Tensor& logits_weak, const at::Tensor& logits_strong, SoftMatchState& state,
                             const SoftMatchOptions& options, const at::Tensor& weak_all = {});

}  // namespace sscl
