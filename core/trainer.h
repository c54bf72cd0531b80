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
#include "core/hook.h"
#include "core/method.h"
#include "core/optim.h"
#include "core/precision.h"
#include "core/task_data.h"

namespace sscl {

struct TrainerOptions {
  int64_t iters_per_task = 1000;
  int64_t iters_per_virtual_epoch = 100;  // the reference's virtual epoch
  // Iterations of each task when they differ (train.epochs_per_task converts epochs
  // over each task's labeled images); empty: iters_per_task for every task.
  std::vector<int64_t> task_iters;
  Amp amp = Amp::kNone;       // train.amp: autocast around Method::step
  bool grad_scaling = false;  // a GradScaler around backward and step (train.amp = fp16)

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

  TrainerOptions options_;
  Method& method_;
  TaskData& data_;
  HookDispatcher& hooks_;
  Optimizer optimizer_factory_;
  LrSchedule schedule_;
  Evaluator evaluator_;
  torch::Device device_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::optional<GradScaler> scaler_;  // train.amp = fp16
  RunState state_;
};

}  // namespace sscl
