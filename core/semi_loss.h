// A semi-supervised loss composed with a continual method (method.semi). The
// continual method decides what it adds to an iteration (replay, penalties,
// distillation); the semi-supervised loss decides how the current batch goes
// through the model and returns the labeled term "sup" plus its unlabeled terms.
// A continual method composes by calling Method::forward_current() for its
// current batch instead of its own forward pass, so one class serves every pair.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/batch.h"
#include "core/config.h"
#include "core/hook.h"
#include "core/registry.h"

namespace sscl {

class Method;

struct CurrentBatchOutput {
  // Raw logits [B, K] of the labeled images (no task mask). Detached when the loss
  // trains on mixed images instead (MixMatch); a method stores them (DER) or
  // distils from them (LwF) either way.
  at::Tensor labeled_logits;
  // Raw logits [E, K] of the method's `extra` images (a replay draw), with gradient.
  at::Tensor extra_logits;
  // "sup" first, then the loss's own terms; the same names every iteration.
  LossTerms terms;
};

// The labeled term from task-masked logits; cross-entropy unless the method has
// its own (ER-ACE's asymmetric loss).
using SupervisedLoss = std::function<at::Tensor(const at::Tensor& logits, const at::Tensor& labels)>;
at::Tensor cross_entropy_loss(const at::Tensor& logits, const at::Tensor& labels);

class SemiLoss : public Hook {
 public:
  ~SemiLoss() override = default;

  virtual std::string name() const = 0;
  std::string hook_name() const override { return "semi:" + name(); }

  // Called by Method::attach(); the loss reads the run through the method
  // (model(), context(), train_logits(), data()).
  virtual void attach(Method& method) { method_ = &method; }

  // The current batch's forward passes and losses. `extra` (undefined or [E, ...])
  // are images of the method that share the labeled forward pass.
  virtual CurrentBatchOutput forward(const TrainBatch& batch, const at::Tensor& extra, const SupervisedLoss& supervised,
                                     const RunState& state) = 0;

  // False for losses that replace the supervised term (MixMatch trains on mixed
  // targets); a method with its own supervised loss cannot take those.
  virtual bool keeps_supervised_loss() const { return true; }

  // The loss runs distributed: its terms are means over equal slices of the
  // global batch (so averaging the ranks' gradients is the one-process
  // gradient) and whatever it keeps it updates from every rank's rows
  // (Method::gather_rows). A distributed run of a loss without it is refused.
  virtual bool distributed() const { return false; }

  // Figures for results.json (prefixed "semi." there); the state to checkpoint
  // is named in visit_state() (core/state.h), as for every hook.
  virtual std::vector<std::pair<std::string, double>> stats() const { return {}; }

 protected:
  Method& method() const;

 private:
  Method* method_ = nullptr;
};

// Factory: the loss's options section ([method.<name>] when composed, [method]
// itself for the loss alone, e.g. method.name = "fixmatch").
SSCL_DECLARE_REGISTRY(SemiLossRegistry, std::function<std::unique_ptr<SemiLoss>(const ConfigSection&)>);

}  // namespace sscl
