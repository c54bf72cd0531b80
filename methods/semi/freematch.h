// FreeMatch (Wang et al., ICLR 2023): self-adaptive thresholding (SAT). A global
// threshold tau_t, the EMA of the weak view's mean max-probability, scaled per
// class by the max-normalised EMA of the mean probability vector p~_t:
//   tau_t(c) = MaxNorm(p~_t)(c) * tau_t,   both EMAs start at 1/C,
// so the threshold starts low and rises with the model's confidence. Plus the
// self-adaptive fairness term (SAF) on the strong views of the selected images:
//   L_f = -H(SumNorm(p~_t / h_t), SumNorm(p_bar / h_bar))
// (h_t: EMA of the weak view's label histogram; p_bar, h_bar: mean probability and
// label histogram of the selected strong views), with the paper's and the
// reference's sign. The reference is USB's FreeMatchThresholdingHook.
//
// Continual setting: the EMAs describe the current task's unlabeled pool and its
// classes, so they start again at 1/C with each task (C: the task's classes under
// the task mask, all classes otherwise).
#pragma once

#include <ATen/core/Tensor.h>

#include "core/options.h"

namespace sscl {

class World;

struct FreeMatchOptions {
  double lambda_u = 1.0;
  // w_f: USB's CIFAR-10/100 configs set 0.001 (its command-line default is
  // 0.01); 0 drops the term.
  double lambda_f = 0.001;
  double ema_momentum = 0.999;  // the paper's lambda, USB's ema_p
  bool concat_forward = true;   // see methods/semi/weak_strong_loss.h
  static void declare(OptionSpec<FreeMatchOptions>& o);
};

// SAT's state, on the device.
struct FreeMatchEma {
  at::Tensor global_threshold;  // tau_t, scalar
  at::Tensor class_probs;       // p~_t, [K]
  at::Tensor label_hist;        // h_t, [K]
};

// tau_0 = 1/C and p~_0 = h_0 = 1/C on the C classes where `class_support` ([K],
// 0/1) is 1, 0 on the others (classes the task mask excludes).
FreeMatchEma freematch_initial_ema(const at::Tensor& class_support);

// One EMA step (momentum m) from the weak view's probabilities [U, K]:
//   tau_t = m tau_{t-1} + (1 - m) mean_i max_c p_ic
//   p~_t  = m p~_{t-1}  + (1 - m) mean_i p_i
//   h_t   = m h_{t-1}   + (1 - m) hist(argmax_c p_ic) / U
void freematch_update(FreeMatchEma& ema, const at::Tensor& probs, double momentum);

// tau_t(c) = p~_t(c) / max_k p~_t(k) * tau_t, [K].
at::Tensor freematch_class_thresholds(const FreeMatchEma& ema);

// SAF from the strong logits [U, K] (with gradient) and the [U] 0/1 mask of the
// selected images; zero when none is selected. Only the strong view's mean
// probability carries gradient (the histograms and EMAs are constants). With a
// distributed `world`, the rows are this rank's slice and the count, histogram
// and mean are the global batch's (summed over the ranks, the mean's sum with
// gradient), so every rank computes the one-process term.
at::Tensor freematch_fairness_loss(const at::Tensor& logits_strong, const at::Tensor& mask,
                                   const at::Tensor& class_probs, const at::Tensor& label_hist, World* world = nullptr);

struct FreeMatchTerms {
  at::Tensor unsup;     // masked hard-label CE (unweighted)
  at::Tensor fairness;  // SAF (unweighted); undefined when options.lambda_f is 0
  at::Tensor mask;      // [U] 0/1
};

// One iteration: the EMAs take this batch's weak predictions first, then its
// images are thresholded (the reference's order). In a distributed run
// `weak_all` holds every rank's detached weak logits (the global batch), which
// the EMAs take instead of this rank's, and `world` reduces the fairness term's
// statistics.
FreeMatchTerms freematch_step(const at::Tensor& logits_weak, const at::Tensor& logits_strong, FreeMatchEma& ema,
                              const FreeMatchOptions& options, const at::Tensor& weak_all = {}, World* world = nullptr);

}  // namespace sscl
