// MixMatch (Berthelot et al., NeurIPS 2019): the label of an unlabeled image is
// guessed from K weak augmentations (mean softmax, sharpened); labeled and
// unlabeled images are then mixed up with a shuffled copy of their union, and the
// model trains on the mixed images: soft CE on the mixed labeled rows (L_x, which
// replaces the plain supervised term) and MSE on the mixed unlabeled rows (L_u).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "core/options.h"

namespace sscl {

struct MixMatchOptions {
  int64_t k_aug = 2;           // K augmentations per unlabeled image (paper)
  double temperature = 0.5;    // sharpening T (paper, USB)
  double mixup_alpha = 0.5;    // Beta(alpha, alpha) (USB; the paper's CIFAR-10 value is 0.75)
  double lambda_u = 75.0;      // paper (CIFAR-10) and USB's configs
  double unsup_warm_up = 0.4;  // USB's configs: linear ramp over 40% of the task
  bool concat_forward = true;  // one pass over [mixed, extra] (and one over [labeled, K views] for the guess)
  static void declare(OptionSpec<MixMatchOptions>& o);
};

// The guessed labels [U, C]: sharpen(mean_k softmax(view_logits[k]), T). Logits
// task-masked to -inf give probability 0 there, and sharpening keeps 0 at 0.
at::Tensor guess_labels(const std::vector<at::Tensor>& view_logits, double temperature);

struct MixedBatch {
  at::Tensor inputs;   // lambda * inputs + (1 - lambda) * inputs[permutation]
  at::Tensor targets;  // the same for the targets
};

// MixUp of every row with the row `permutation` sends it to (the paper's
// W = Shuffle(Concat(X, U)) paired with Concat(X, U) row by row). `lambda` is
// already max(lambda, 1 - lambda) (mixmatch_lambda in semi_math.h), so each mixed
// row stays closer to its own image and L_x stays a labeled loss.
MixedBatch mixmatch_mixup(const at::Tensor& inputs, const at::Tensor& targets, const at::Tensor& permutation,
                          double lambda);

struct MixMatchLosses {
  at::Tensor labeled;    // L_x: mean over the first num_labeled rows of soft CE
  at::Tensor unlabeled;  // L_u: mean over the other rows of sum_c (softmax - target)^2 / num_classes
};

// Both terms from the (task-masked) logits of the mixed rows and their mixed
// targets; the first `num_labeled` rows are the labeled ones. No unlabeled rows
// gives L_u = 0. num_classes: the classes in play (the task's under the task mask).
MixMatchLosses mixmatch_losses(const at::Tensor& logits, const at::Tensor& targets, int64_t num_labeled,
                               int64_t num_classes);

}  // namespace sscl
