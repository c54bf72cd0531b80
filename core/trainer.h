// The iteration-based training loop. It owns control flow only: the run builder
// (core/run_builder.h) builds the objects, hooks own side effects (logging,
// files, checkpoints), the evaluator measures, the method owns the maths.
#pragma once

#include <torch/optim/optimizer.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/evaluator.h"
#include "core/grad_sync.h"
#include "core/hook.h"
#include "core/method.h"
#include "core/optim.h"
#include "core/precision.h"
#include "core/task_data.h"
#include "core/world.h"

namespace sscl {

struct TrainerOptions {
  int64_t iters_per_task = 1000;
  int64_t iters_per_virtual_epoch = 100;  // the reference's virtual epoch
  // Iterations of each task when they differ (train.epochs_per_task converts epochs
  // over each task's labeled images); empty: iters_per_task for every task.
  std::vector<int64_t> task_iters;
  Amp amp = Amp::kNone;       // train.amp: autocast around Method::step
  bool grad_scaling = false;  // a GradScaler around backward and step (train.amp = fp16)
  // The ranks of a distributed run (core/world.h); null: one process.
  std::shared_ptr<World> world;
  double bucket_mb = 25;  // train.dist_bucket_mb

  int64_t iters_of(int task) const {
    return task_iters.empty() ? iters_per_task : task_iters.at(static_cast<size_t>(task));
  }
};

class Trainer {
 public:
  Trainer(TrainerOptions options, Method& method, TaskData& data, HookDispatcher& hooks, Optimizer optimizer,
          LrSchedule schedule, Evaluator evaluator, torch::Device device);

  // Trains every task and evaluates after each; returns the final state.
  const RunState& run();
  // Goes on from a checkpoint written by a run of the same config: restores the
  // model, optimizer, method, hooks, revealed labels, generators and position,
  // then trains what is left. Throws IoError when the checkpoint does not fit.
  const RunState& resume(const std::string& checkpoint);
  const RunState& state() const { return state_; }

  // The position a checkpoint names (for the CheckpointHook of a resumed run).
  static CheckpointPosition position_of(const std::string& checkpoint);

  // The whole checkpoint of the current moment, as bytes.
  std::string checkpoint_bytes(const CheckpointPosition& position) const;

 private:
  const RunState& run_from(const std::string* checkpoint);
  CheckpointPosition restore(const std::string& checkpoint);
  CheckpointPosition restore_archive(const std::string& checkpoint);
  void train_task(int task, int64_t first_iter, bool resumed);
  void train_iteration(int task, int64_t iter);
  void sync_device() const;  // so that timings of asynchronous devices are honest
  // Distributed: every rank starts from rank 0's weights.
  void broadcast_model();
  // A fresh optimizer over the method's trainable parameters, grouped by optimizer.lr_mult.
  void make_optimizer();
  // Distributed: the loss terms become their means over the ranks, the model's
  // floating buffers (BatchNorm's running statistics) too, and a stop asked of
  // any rank becomes every rank's. Returns the milliseconds it took. The buffers'
  // means are written by write_buffer_means, after backward: autograd saved the
  // running statistics (aten::batch_norm's backward checks their version).
  double reduce_across_ranks(std::vector<double>& losses);
  void write_buffer_means();
  // The gradient synchroniser of the current optimizer's parameters.
  GradSync& grad_sync();

  TrainerOptions options_;
  Method& method_;
  TaskData& data_;
  HookDispatcher& hooks_;
  Optimizer optimizer_factory_;
  LrSchedule schedule_;
  Evaluator evaluator_;
  torch::Device device_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<double> lr_mults_;      // each group's of optimizer_
  std::optional<GradScaler> scaler_;  // train.amp = fp16
  std::shared_ptr<World> world_;
  std::unique_ptr<GradSync> grad_sync_;
  const torch::optim::Optimizer* synced_optimizer_ = nullptr;
  int agreed_stop_ = 0;      // distributed: the stop every rank saw in the last reduction
  at::Tensor buffer_means_;  // distributed: reduce_across_ranks's, for write_buffer_means
  RunState state_;
};

}  // namespace sscl
