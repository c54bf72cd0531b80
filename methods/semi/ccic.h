// CCIC, Contrastive Continual Interpolation Consistency (Boschini, Buzzega,
// Bonicelli, Porrello, Calderara, Pattern Recognition Letters 2022, arXiv
// 2108.06552). A continual and semi-supervised method in one: a reservoir buffer
// of labeled images and, per iteration,
//
//   L = CE(mixed current labeled) + memory_penalty * CE(mixed buffer draw)   "sup", "replay"
//     + lambda_u * interpolation consistency on the unlabeled images        "unsup"
//     + batch-hard triplet on current + buffer features                      "triplet"
//     + alpha * negative-only triplet: current unlabeled vs past-task buffer "memory_contrast"
//
// Interpolation consistency is MixMatch's: the targets of an unlabeled image are
// the sharpened mean prediction over k_aug weak views (model in eval mode); every
// labeled and unlabeled image is mixed with a partner drawn from the pool of all
// of them (lambda ~ Beta(a, a), max(lambda, 1 - lambda) per row). As in the
// authors' code, a mixed image keeps its own target (label or guess): the
// prediction on an interpolation must match its dominant operand. The triplet
// anchors are themselves mixed (Beta(1, 1)) in the first contrast_fraction of
// every task after the first, where the memory contrast is also applied. At
// evaluation the model is a k-NN over the buffer's L2-normalised features.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "core/options.h"
#include "methods/common/replay.h"

namespace sscl {

struct CcicOptions {
  ReplayOptions replay;            // buffer_size (>= 1), minibatch_size (0: data.batch_size)
  double lambda_u = 0.5;           // interpolation-consistency weight (reference: lamda / mixmatch_alpha)
  double alpha = 0.5;              // memory-contrast weight
  double memory_penalty = 1.0;     // weight of the buffer draw's cross-entropy
  int64_t k_aug = 3;               // weak views per unlabeled image for label guessing
  double sharp_temp = 0.5;         // sharpening temperature
  double mixup_alpha = 0.75;       // Beta(a, a) of the interpolation-consistency mixup
  int64_t knn_k = 3;               // neighbours of the evaluation k-NN
  int64_t triplet_k = 0;           // hardest pairs per anchor; 0: max(1, data.batch_size / 10) as the reference
  double triplet_margin = 1.0;     // on squared feature distances
  double contrast_fraction = 0.9;  // share of each task with mixed anchors and the memory contrast
  bool knn_eval = true;            // false: evaluate by the linear head's argmax instead
  static void declare(OptionSpec<CcicOptions>& o);
};

// Squared Euclidean distances between the rows of `features` [N, D] -> [N, N].
at::Tensor pairwise_squared_distances(const at::Tensor& features);

// Batch-hard triplet with k hardest pairs: for every anchor, the j-th largest
// d(anchor, positive) (same label, the anchor itself included; rows with fewer
// than k positives fill with 0) against the j-th smallest d(anchor, negative),
// j < min(k, N); pairs without a negative are dropped. Returns
// mean(max(0, d_pos - d_neg + margin)) over the kept pairs, and zero (attached to
// the graph) when none is left.
at::Tensor batch_hard_triplet_loss(const at::Tensor& labels, const at::Tensor& features, int64_t k, double margin);

// The memory contrast: only the k nearest negatives of every anchor, pushed beyond
// the margin: mean(max(0, margin - d_neg)) over the kept pairs; zero when the
// batch holds a single label.
at::Tensor negative_only_triplet_loss(const at::Tensor& labels, const at::Tensor& features, int64_t k, double margin);

// Label guessing: `view_logits` [K, U, C] (already task-masked where asked) ->
// sharpen(mean_k softmax(view_logits[k]), temperature), [U, C].
at::Tensor guess_targets(const at::Tensor& view_logits, double temperature);

// The consistency term on the classes `columns` (int64 [C']): the mean over rows
// and those classes of (logits - targets)^2, divided once more by C' as the
// reference does (its MSE over all classes / num_classes). Zero when N = 0.
at::Tensor consistency_loss(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& columns);

// Row-wise mixup: lambdas[i] * a[i] + (1 - lambdas[i]) * b[i]; lambdas float [N].
at::Tensor mix_rows(const at::Tensor& a, const at::Tensor& b, const at::Tensor& lambdas);

// The evaluation k-NN. Features are L2-normalised here. Score of class c = the
// number of the k nearest memory rows labelled c, minus 1e-5 x the squared
// distance to the nearest memory row of c (the reference's tie-break); classes
// without memory rows score -1, below every class that has some. [N, num_classes].
at::Tensor knn_scores(const at::Tensor& query_features, const at::Tensor& memory_features,
                      const at::Tensor& memory_labels, int64_t num_classes, int64_t k);

}  // namespace sscl
