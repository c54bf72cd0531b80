// Pseudo-Label (Lee, ICML-W 2013), as TorchSSL/USB implement it: the weak view's
// own confident prediction (detached) becomes a hard label for that same view,
// with the unlabeled weight warmed up linearly over the first part of training.
#pragma once

#include <ATen/core/Tensor.h>

#include "methods/semi/fixmatch.h"

namespace sscl {

struct PseudoLabelOptions {
  double threshold = 0.95;     // USB's p_cutoff
  double lambda_u = 1.0;       // USB's ulb_loss_ratio
  double unsup_warm_up = 0.4;  // USB's: the weight reaches lambda_u after 40% of the task (unsup_warmup)
  bool concat_forward = true;  // see methods/semi/weak_strong_loss.h
  static void declare(OptionSpec<PseudoLabelOptions>& o);
};

// The unlabeled term on one view: pseudo-labels are the argmax of the detached
// logits, kept where max softmax >= threshold; CE of the same logits (with their
// gradient) against them, averaged over all U. U = 0 gives a zero loss.
PseudoLabelLoss pseudo_label_loss(const at::Tensor& logits, double threshold);

}  // namespace sscl
