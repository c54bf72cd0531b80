// The family of semi-supervised losses that take their targets from the weak view
// of an unlabeled image and train the strong view towards them (FixMatch,
// FlexMatch, FreeMatch, SoftMatch, UDA), or train the weak view itself
// (Pseudo-Label). This base does the forward passes and leaves the maths to the
// subclass:
// - concat_forward = true: one pass over [labeled, extra, weak, strong], as
//   FixMatch's and USB's code (BatchNorm normalises them together; fastest);
// - concat_forward = false: a pass over [labeled, extra], one over the weak view
//   (without gradient when it only supplies targets) and one over the strong view.
// Iterations without unlabeled images, or where the loss says it is inactive (a
// zero weight in a warm-up), run no unlabeled pass at all and report the
// unlabeled terms as zeros.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "core/nn/classifier.h"
#include "core/semi_loss.h"
#include "methods/common/running_mean.h"

namespace sscl {

// Train-masked logits of the unlabeled views and the images' ids.
struct UnlabeledLogits {
  at::Tensor weak;     // [U, K]; has gradient only when the loss trains the weak view
  at::Tensor strong;   // [U, K]; undefined when the loss uses no strong view
  at::Tensor indices;  // [U] int64 training-set ids (for per-image state, FlexMatch)
  int task = 0;
};

class WeakStrongLoss : public SemiLoss {
 public:
  explicit WeakStrongLoss(bool concat_forward) : concat_forward_(concat_forward) {}

  CurrentBatchOutput forward(const TrainBatch& batch, const at::Tensor& extra, const SupervisedLoss& supervised,
                             const RunState& state) final;
  std::vector<std::pair<std::string, double>> stats() const override;
  // The mask rate's running mean; losses with state of their own visit it first.
  void visit_state(StateVisitor& s) override { s("mask_rate", mask_rate_); }

 protected:
  // True when the loss trains on the weak view itself and needs no strong view.
  virtual bool trains_weak_view() const { return false; }
  // Whether the unlabeled passes run this iteration.
  virtual bool active(const RunState&) const { return true; }
  // Names of the unlabeled terms, in the order unlabeled_terms() returns them.
  virtual std::vector<std::string> term_names() const { return {"unsup"}; }
  // The unlabeled terms from a non-empty unlabeled batch.
  virtual LossTerms unlabeled_terms(const UnlabeledLogits& logits, const RunState& state) = 0;
  // The labeled term from task-masked logits; UDA overrides it (annealing).
  virtual at::Tensor supervised_term(const at::Tensor& logits, const at::Tensor& labels,
                                     const SupervisedLoss& supervised, const RunState&) {
    return supervised(logits, labels);
  }
  // Records which unlabeled images passed the loss's confidence test (a [U]
  // 0/1 or weight tensor of this rank's rows): results.json reports the mean
  // over every rank's ("semi.mask_rate").
  void record_mask(const at::Tensor& mask);

 private:
  bool concat_forward_;
  RunningMean mask_rate_;
};

// The rows of a loss's supervised pass: the batch's labeled images, then the
// method's extra images when it has any (WeakStrongLoss's and Mean Teacher's forward()).
struct HeadImages {
  HeadImages(const TrainBatch& batch, const at::Tensor& extra_images);
  // Fills out.labeled_logits and out.extra_logits from the logits of `images`.
  void split(const at::Tensor& logits, CurrentBatchOutput& out) const;

  at::Tensor images;  // [labeled + extra, ...]
  int64_t labeled = 0;
  int64_t extra = 0;
};

// One model pass over the concatenated `parts` (BatchNorm normalises them
// together: concat_forward), the logits split back into one tensor per part.
std::vector<at::Tensor> forward_concat(Classifier& model, const std::vector<at::Tensor>& parts);

// The doc of the concat_forward key of the losses built on WeakStrongLoss.
inline constexpr const char* kConcatForwardDoc =
    "one model pass over [labeled, extra, weak, strong] (BatchNorm normalises them together); false: one pass each";

}  // namespace sscl
