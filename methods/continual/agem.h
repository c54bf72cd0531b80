// A-GEM (Chaudhry et al., ICLR 2019): an episodic memory of past labeled images
// gives a reference gradient g_ref each iteration; when the current gradient g
// would increase the memory's loss (g . g_ref < 0) it is projected onto the
// half-space where it does not: g' = g - (g . g_ref / g_ref . g_ref) g_ref (Eq. 11).
// The memory is ER's reservoir buffer (options: MemoryOptions, buffer_size >= 1);
// a batch is offered to it after the optimizer step, so it never serves as its
// own reference.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "methods/continual/er.h"

namespace sscl {

// The A-GEM projection of the flat gradient `g` against the flat reference
// gradient `g_ref` (same shape): g itself when g . g_ref >= 0.
at::Tensor agem_project(const at::Tensor& g, const at::Tensor& g_ref);

// The gradients of `params` as one flat vector (zeros where a gradient is undefined).
at::Tensor flat_gradient(const std::vector<at::Tensor>& params);
// Writes the flat vector `flat` back into the .grad of `params`.
void assign_flat_gradient(const std::vector<at::Tensor>& params, const at::Tensor& flat);

class Agem : public Er {
 public:
  // Distributed (Er's trait): the reference gradient is averaged over the ranks' slices of the draw.
  explicit Agem(const ReplayOptions& options) : Er(options) {}

  std::string name() const override { return "agem"; }
  LossTerms step(const TrainBatch& batch, const RunState& state) override;
  void after_backward(const RunState& state) override;
  void after_iter(const RunState& state) override;

  std::vector<std::pair<std::string, double>> stats() const override;
  void visit_state(StateVisitor& s) override;

 private:
  TrainBatch pending_;       // the current labeled batch (and task), offered in after_iter
  int64_t checks_ = 0;       // iterations with a reference gradient
  int64_t projections_ = 0;  // of which the gradient was projected
};

}  // namespace sscl
