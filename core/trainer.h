// The iteration-based training loop. It owns control flow only: the runner builds
// the objects, hooks own side effects (logging, files), the method owns the maths.
#pragma once

#include <torch/optim/optimizer.h>

#include <cstdint>
#include <memory>
#include <vector>

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

  // Trains every task and evaluates after each; returns the final state.
  const RunState& run();
  const RunState& state() const { return state_; }

 private:
  void train_task(int task);
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
};

}  // namespace sscl
