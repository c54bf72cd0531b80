// ER-ACE (Caccia et al., ICLR 2022, "New Insights on Reducing Abrupt
// Representation Change in Online Continual Learning"): ER with an asymmetric
// cross-entropy. The incoming batch's softmax leaves out the classes seen before
// that are absent from the batch, so new data no longer pushes the old classes'
// logits down (the abrupt change of the old classes' features at a task switch);
// the replayed images use the usual cross-entropy over every class.
//
// Which classes the incoming softmax keeps (the authors' code and mammoth's
// er_ace): the classes present in the batch, and the classes never seen so far.
// Masked: classes seen in an earlier batch (old tasks', and the current task's
// seen earlier) that are not in this batch. Both codes find "never seen" as
// "class id >= the largest id seen", which assumes classes arrive in ascending
// order; we keep the set itself, so a random class order (data.class_order) masks
// the same classes.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "methods/continual/er.h"

namespace sscl {

// Bool [K]: true for the logits the incoming batch's cross-entropy keeps, i.e. the
// classes of `labels` and those not in `seen` (bool [K], the classes seen before
// this batch; the batch's own may be in it or not).
at::Tensor ace_keep_mask(const at::Tensor& labels, const at::Tensor& seen);

// Cross-entropy of the incoming batch over the kept logits only.
at::Tensor ace_incoming_loss(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& keep);

class ErAce : public Er {
 public:
  explicit ErAce(const ReplayOptions& options) : Er(options) {
    traits_.needs_plain_labeled_pass = true;  // its asymmetric loss
    // The asymmetric loss keeps a new task's classes from pushing the old ones
    // down; in domain-IL every task has every class, so there is nothing for it to
    // separate (it would be ER): use ER there.
    traits_.scenarios = {Scenario::kTaskIL, Scenario::kClassIL};
  }

  std::string name() const override { return "er_ace"; }
  void attach(MethodContext context) override;
  LossTerms step(const TrainBatch& batch, const RunState& state) override;
  void visit_state(StateVisitor& s) override {
    Er::visit_state(s);
    s("seen_classes", seen_, Place::kDevice);
  }

  // Bool [K]: the classes seen in the labeled stream so far.
  const at::Tensor& seen_classes() const { return seen_; }

 private:
  at::Tensor seen_;
};

}  // namespace sscl
