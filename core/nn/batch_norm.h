// BatchNorm1d / BatchNorm2d as torch::nn's: the same options, the same
// parameter and buffer names (weight, bias, running_mean, running_var,
// num_batches_tracked: checkpoints, exports and model_stats see no difference)
// and, unsynced, the same aten::batch_norm call. One addition: after
// sync_with(world), a forward in training mode normalises over the global
// batch, every rank's rows (PyTorch's SyncBatchNorm; model.sync_bn):
//   forward: one all-reduce of the per-channel count, sum and sum of squares
//     (accumulated in double), so every rank uses the global mean and biased
//     variance, and updates its running statistics with the global unbiased one;
//   backward: one all-reduce of the per-channel sums of dy and dy·(x − mean),
//     so the input's gradient is that of the whole batch's loss. The weight's
//     and bias's gradients stay local: the gradient all-reduce averages them.
// Every rank must then run the same training-mode forwards (as the ranks of a
// run do); a rank may hold no rows of a batch (it adds zero).
// On one process the same computation runs with nothing to reduce, so a run on
// one process and on N ranks differ only by the order of float sums. That is
// the point: torch's kernel rounds differently, and training with BatchNorm
// amplifies rounding (docs/distributed.md measures it).
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/options/batchnorm.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <ostream>

namespace sscl {

class World;

// D = 1: inputs [N, C] or [N, C, L]; D = 2: [N, C, H, W].
template <int D>
class BatchNormNdImpl : public torch::nn::Cloneable<BatchNormNdImpl<D>> {
 public:
  explicit BatchNormNdImpl(int64_t num_features) : BatchNormNdImpl(torch::nn::BatchNormOptions(num_features)) {}
  explicit BatchNormNdImpl(const torch::nn::BatchNormOptions& options);

  void reset() override;
  void reset_parameters();
  void reset_running_stats();
  torch::Tensor forward(const torch::Tensor& input);
  void pretty_print(std::ostream& stream) const override;

  // Normalise training-mode batches across `world`'s ranks (this computation
  // even on one process); nullptr: torch's kernel again.
  void sync_with(std::shared_ptr<World> world) { world_ = std::move(world); }
  bool synced() const;

  torch::nn::BatchNormOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  std::shared_ptr<World> world_;
};

using BatchNorm1dImpl = BatchNormNdImpl<1>;
using BatchNorm2dImpl = BatchNormNdImpl<2>;
TORCH_MODULE(BatchNorm1d);
TORCH_MODULE(BatchNorm2d);

// Syncs every sscl BatchNorm in `model` with `world`; returns how many there
// are. Throws Error naming the module when `model` holds a torch::nn BatchNorm
// (which cannot sync: a backbone must use these).
int sync_batch_norm(torch::nn::Module& model, const std::shared_ptr<World>& world);

}  // namespace sscl
