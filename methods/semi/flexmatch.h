// FlexMatch (Zhang et al., NeurIPS 2021): curriculum pseudo-labelling. FixMatch's
// fixed threshold tau becomes one threshold per class, tau * M(beta_c), where the
// learning effect beta_c counts the task's unlabeled images whose latest confident
// prediction (max probability >= tau) was c, normalised by the best-learnt class --
// or, under threshold warm-up, by the images never confidently predicted yet when
// they are more (paper Sec. 3.2-3.3; M(x) = x / (2 - x), the reference's convex
// mapping; the reference is USB's FlexMatchThresholdingHook). Classes the model
// has not yet learnt get a low threshold, so more of their images are used; at
// the start of a task every threshold is 0.
//
// Continual setting: the per-image status belongs to the current task's unlabeled
// pool, so it starts afresh (all "never confident") with each task.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>

#include "core/options.h"
#include "core/state.h"
#include "methods/semi/fixmatch.h"

namespace sscl {

class World;

enum class FlexMatchMapping {
  kConvex,  // M(x) = x / (2 - x): the paper's and the reference's choice
  kLinear,  // M(x) = x: the paper's linear form T_t(c) = beta_t(c) * tau
};

struct FlexMatchOptions {
  double threshold = 0.95;  // tau
  double lambda_u = 1.0;
  bool thresh_warmup = true;
  FlexMatchMapping mapping = FlexMatchMapping::kConvex;
  bool concat_forward = true;  // see methods/semi/weak_strong_loss.h
  static void declare(OptionSpec<FlexMatchOptions>& o);
};

// beta_c from the counts sigma_c ([K] float) and the number of pool images never
// confidently predicted (scalar float):
//   warm-up:    beta_c = sigma_c / max(max_k sigma_k, N_unused)
//   no warm-up: beta_c = sigma_c / max_k sigma_k
// A zero denominator (nothing counted yet) gives beta = 0.
at::Tensor flexmatch_learning_effect(const at::Tensor& class_counts, const at::Tensor& num_unused, bool thresh_warmup);

// M(beta), element-wise.
at::Tensor flexmatch_mapping(const at::Tensor& beta, FlexMatchMapping mapping);

struct ClasswiseThresholdLoss : PseudoLabelLoss {
  at::Tensor confidence;  // [U] max_c p_i of the weak view
};

// The hard-label consistency term with one threshold per class: image i counts
// when max_c p_i >= class_thresholds[argmax_c p_i] (p: softmax of the detached
// weak logits). Shared by FlexMatch and FreeMatch. U = 0 gives a zero loss.
ClasswiseThresholdLoss classwise_threshold_loss(const at::Tensor& logits_weak, const at::Tensor& logits_strong,
                                                const at::Tensor& class_thresholds);

// The per-image learning status of one task's unlabeled pool, on the device:
// for each training-set id, the class of its latest confident prediction, or -1.
// Ids are arbitrary training-set ids (not 0..pool-1), so the table is indexed
// by id and grows to the largest id seen; the pool size comes from the task data.
class FlexMatchStatus : public Stateful {
 public:
  // Every image "never confidently predicted"; a pool of `pool_size` images.
  void reset(int64_t pool_size, int64_t num_classes, const c10::Device& device);

  // Sets the status of ids[i] (int64 [U], CPU or device) to labels[i] where
  // confident[i] (bool [U]); other rows leave their image's status unchanged.
  void record(const at::Tensor& ids, const at::Tensor& labels, const at::Tensor& confident);

  at::Tensor class_counts() const;  // sigma_c, [K] float
  at::Tensor num_unused() const;    // N_unused = pool - sum_c sigma_c, scalar float

  // tau * M(beta_c), [K] float.
  at::Tensor class_thresholds(const FlexMatchOptions& options) const;

  int64_t pool_size() const { return pool_size_; }
  int64_t bytes() const;

  // The table (undefined before the first reset) and the pool it describes.
  void visit_state(StateVisitor& s) override;

 private:
  // [capacity + 1] int64: slot `id` holds that image's status; the last slot is a
  // sink where the rows that were not confident write, so that record() needs no
  // boolean indexing (a host synchronisation on a GPU).
  at::Tensor status_;
  int64_t pool_size_ = 0;
  int64_t num_classes_ = 0;
};

// One iteration: the term with the class thresholds of the images seen so far,
// then the status records this batch's confident predictions (max p >= tau), in
// the reference's order. `ids`: the images' training-set ids [U]. With a
// distributed `world`, the rows are this rank's slice and the status records
// every rank's (gathered), so that it stays the same on every rank.
ClasswiseThresholdLoss flexmatch_step(const at::Tensor& logits_weak, const at::Tensor& logits_strong,
                                      const at::Tensor& ids, FlexMatchStatus& status, const FlexMatchOptions& options,
                                      World* world = nullptr);

}  // namespace sscl
