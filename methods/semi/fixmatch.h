// FixMatch (Sohn et al., NeurIPS 2020): the weak view's prediction, when its
// confidence reaches `threshold`, becomes a hard pseudo-label for the strong view.
#pragma once

#include <ATen/core/Tensor.h>

#include "core/options.h"

namespace sscl {

struct FixMatchOptions {
  double threshold = 0.95;
  double lambda_u = 1.0;
  bool concat_forward = true;  // see methods/semi/weak_strong_loss.h
  static void declare(OptionSpec<FixMatchOptions>& o);
};

struct PseudoLabelLoss {
  at::Tensor loss;          // scalar: mean over *all* unlabeled images of mask * CE
  at::Tensor mask;          // [U] float, 1 where the weak view was confident
  at::Tensor pseudo_label;  // [U] int64, argmax of the weak view
};

// The unsupervised term. `logits_weak` is detached here; U = 0 gives a zero loss.
PseudoLabelLoss fixmatch_loss(const at::Tensor& logits_weak, const at::Tensor& logits_strong, double threshold);

// Mean over all U rows of mask * CE(logits, label): the hard-label consistency
// term FixMatch and its threshold variants share. U = 0 gives a zero loss.
at::Tensor masked_cross_entropy(const at::Tensor& logits, const at::Tensor& label, const at::Tensor& mask);

}  // namespace sscl
