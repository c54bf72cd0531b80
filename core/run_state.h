// The plain state of a run that hooks read: where the trainer is, the last losses,
// timings and the accuracy matrices. It holds no tensors and no pointers, so it can
// be serialised (results.json, checkpoints) as it is.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/metrics.h"

namespace sscl {

// Wall time of one training iteration, split by where it went (milliseconds).
struct IterationTiming {
  double data_ms = 0;      // waiting for the batch
  double forward_ms = 0;   // the method's step: forward passes and losses
  double backward_ms = 0;  // backward and optimizer step
  double other_ms = 0;     // hooks and bookkeeping
  // Of forward_ms and backward_ms: waiting for the other ranks (the loss and
  // statistics reduction, the gradient buckets not hidden behind backward).
  double comm_ms = 0;
  double total_ms() const { return data_ms + forward_ms + backward_ms + other_ms; }
};

struct TaskTiming {
  std::vector<float> iteration_ms;  // total of each iteration, for median and mean
  IterationTiming sum;              // the parts summed over the task
  double train_s = 0;               // wall time of the task's iterations
  double eval_s = 0;                // wall time of the evaluation after it
};

struct RunState {
  // Shape of the run.
  int num_tasks = 0;
  int64_t iters_per_task = 0;
  int64_t iters_per_virtual_epoch = 0;

  // Position. `iter` restarts at 0 every task; `global_iter` does not.
  int task = -1;
  int64_t iter = 0;
  int64_t epoch = 0;  // virtual epoch inside the task
  int64_t global_iter = 0;
  double lr = 0;

  // The last training step.
  std::vector<std::pair<std::string, double>> losses;  // named terms, as the method returned them
  double loss = 0;                                     // their sum
  IterationTiming last_timing;
  // train.amp = fp16: steps skipped for an overflowed gradient, and the loss scale now.
  int64_t amp_skipped_steps = 0;
  double amp_loss_scale = 0;

  // One entry per finished (or running) task.
  std::vector<TaskTiming> task_timings;

  // A distributed run's model and method state at each task end: the
  // fingerprint (16 hex digits) every rank agreed on (check_ranks_agree).
  std::vector<std::string> state_fingerprints;
  // R[i][j]: accuracy (%) on task j after training task i; NaN where not evaluated.
  AccuracyMatrix task_il;
  AccuracyMatrix class_il;

  bool is_last_iter_of_task() const { return iter + 1 == iters_per_task; }
};

}  // namespace sscl
