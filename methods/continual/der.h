// DER and DER++ (Buzzega et al., NeurIPS 2020, "Dark Experience for General
// Continual Learning: a Strong, Simple Baseline"). The reservoir buffer keeps, with
// each image, the logits the network gave it when it arrived (raw, over every
// class, before that iteration's update), and replay matches them:
//   DER   (eq. 6): CE(current) + alpha * ||f(x') - z'||^2 over a replay draw (x', z')
//   DER++ (eq. 7): DER + beta * CE(f(x''), y'') over a second, independent draw.
// The logit term is mammoth's F.mse_loss: the mean over draw rows and classes.
#pragma once

#include <ATen/core/Tensor.h>

#include "methods/continual/er.h"

namespace sscl {

struct DerOptions {
  ReplayOptions replay;
  double alpha = 0.3;      // weight of the logit-matching term
  double beta = 0.0;       // weight of DER++'s replayed-label term
  bool plus_plus = false;  // DER++: draw a second batch for the label term
};

// Mean squared error between the logits of replayed images and the stored ones
// (no task mask: it matches every class's logit).
at::Tensor der_logit_loss(const at::Tensor& replay_logits, const at::Tensor& stored_logits);

class Der : public Er {
 public:
  explicit Der(DerOptions options);

  std::string name() const override { return options_der_.plus_plus ? "derpp" : "der"; }
  // Sizes the buffer's logits to the model's classes.
  void attach(MethodContext context) override;
  LossTerms step(const TrainBatch& batch, const RunState& state) override;

 private:
  DerOptions options_der_;
};

}  // namespace sscl
