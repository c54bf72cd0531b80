// UDA (Xie et al., NeurIPS 2020): the weak view's prediction, sharpened with a
// temperature, is a soft target for the strong view, kept only where the weak
// view is confident; training-signal annealing (TSA) optionally drops labeled
// images the model already fits well, so the few labels are not overfitted.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "core/options.h"

namespace sscl {

// How the TSA threshold eta_t grows over the task (Sec. 3.2 of the paper).
enum class TsaSchedule { kNone, kLinear, kLog, kExp };

struct UdaOptions {
  double temperature = 0.4;  // softmax(weak / T) (paper, USB)
  double threshold = 0.8;    // confidence mask on the unsharpened weak prediction (paper, USB)
  double lambda_u = 1.0;
  TsaSchedule tsa = TsaSchedule::kNone;  // USB's default
  bool concat_forward = true;            // see methods/semi/weak_strong_loss.h
  static void declare(OptionSpec<UdaOptions>& o);
};

struct UdaLoss {
  at::Tensor loss;     // scalar: mean over *all* U of mask * soft CE(strong, target)
  at::Tensor mask;     // [U] float, 1 where max softmax(weak) >= threshold
  at::Tensor targets;  // [U, K] softmax(weak / T), detached
};

// The consistency term; `logits_weak` is detached here. U = 0 gives a zero loss.
UdaLoss uda_loss(const at::Tensor& logits_weak, const at::Tensor& logits_strong, double temperature, double threshold);

// eta_t = alpha_t (1 - 1/K) + 1/K with alpha_t = t (linear), 1 - exp(-5 t) (log),
// exp(5 (t - 1)) (exp), t in [0, 1] the progress through the task; 1 for kNone.
double tsa_threshold(TsaSchedule schedule, double progress, int64_t num_classes);

// [B] bool: the labeled rows TSA keeps, those whose correct-class probability is
// at most eta (the paper removes rows with p(y*|x) > eta_t).
at::Tensor tsa_keep_mask(const at::Tensor& logits, const at::Tensor& labels, double eta);

}  // namespace sscl
