// The iteration-based training loop. It owns control flow only: the runner builds
// the objects, hooks own side effects (logging, files), the method owns the maths.
#pragma once

#include <torch/optim/optimizer.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/hook.h"
#include "core/method.h"
#include "core/optim.h"
#include "core/task_data.h"

namespace sscl {

struct TrainerOptions {
  int64_t iters_per_task = 1000;
  int64_t iters_per_virtual_epoch = 100;  // the reference's virtual epoch
  int64_t eval_batch_size = 256;
  bool eval_all_tasks = false;  // also evaluate tasks not trained yet (forward transfer)
  // Iterations of each task when they differ (train.epochs_per_task converts epochs
  // over each task's labeled images); empty: iters_per_task for every task.
  std::vector<int64_t> task_iters;

  int64_t iters_of(int task) const {
    return task_iters.empty() ? iters_per_task : task_iters.at(static_cast<size_t>(task));
  }

  // Reads train.iters_per_task, train.iters_per_virtual_epoch, eval.batch_size,
  // eval.all_tasks.
  static TrainerOptions from_config(const Config& config);
};

class Trainer {
 public:
  Trainer(TrainerOptions options, Method& method, TaskData& data, HookDispatcher& hooks, OptimizerOptions optimizer,
          LrScheduleOptions schedule, torch::Device device);

  // Receives a checkpoint's bytes and where the trainer stands; returns where it
  // went (for messages).
  using CheckpointWriter = std::function<std::string(const std::string& bytes, const CheckpointPosition&)>;
  // Checkpoints after every task's evaluation, every `interval` iterations (global
  // count; 0: never mid-task) and when a stop is requested (core/stop_request.h).
  void set_checkpoint_writer(CheckpointWriter writer, int64_t interval);

  // Trains every task and evaluates after each; returns the final state.
  const RunState& run();
  // Goes on from a checkpoint written by a run of the same config: restores the
  // model, optimizer, method, hooks, revealed labels, generators and position,
  // then trains what is left. Throws IoError when the checkpoint does not fit.
  const RunState& resume(const std::string& checkpoint);
  const RunState& state() const { return state_; }
  // Where a resumed run started (set by resume()).
  const std::optional<CheckpointPosition>& resumed_from() const { return resumed_from_; }

  // The whole checkpoint of the current moment, as bytes.
  std::string checkpoint_bytes(const CheckpointPosition& position) const;

 private:
  const RunState& run_from(const std::string* checkpoint);
  CheckpointPosition restore(const std::string& checkpoint);
  CheckpointPosition restore_archive(const std::string& checkpoint);
  std::string write_checkpoint(const CheckpointPosition& position);
  void train_task(int task, int64_t first_iter, bool resumed);
  void train_iteration(int task, int64_t iter);
  void evaluate(int after_task);
  void sync_device() const;  // so that timings of asynchronous devices are honest

  TrainerOptions options_;
  Method& method_;
  TaskData& data_;
  HookDispatcher& hooks_;
  OptimizerOptions optimizer_options_;
  LrSchedule schedule_;
  torch::Device device_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  RunState state_;
  CheckpointWriter checkpoint_writer_;
  int64_t checkpoint_interval_ = 0;
  std::optional<CheckpointPosition> resumed_from_;
};

}  // namespace sscl
