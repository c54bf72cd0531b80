// Evaluation after each task (mmengine's ValLoop with its Evaluator): task-IL and
// class-IL accuracy of the method's predictions on the test images of every task
// seen so far, or of every task with eval.all_tasks (forward transfer).
//   task-IL:  argmax over the classes of the image's own task
//   class-IL: argmax over the classes of every task trained so far
#pragma once

#include <c10/core/Device.h>

#include <cstdint>

#include "core/options.h"
#include "core/precision.h"
#include "core/run_state.h"

namespace sscl {

class Method;
class TaskData;
class World;

struct EvalOptions {
  int64_t batch_size = 256;
  bool all_tasks = false;
  bool amp = true;  // in train.amp's precision; false: float32
  static void declare(OptionSpec<EvalOptions>& o);
};

class Evaluator {
 public:
  Evaluator(EvalOptions options, c10::Device device, Amp amp = Amp::kNone)
      : options_(options), device_(device), amp_(options.amp ? amp : Amp::kNone) {}

  // Fills row `after_task` of state.task_il and state.class_il. TrainingError
  // when a task has no evaluation images.
  void evaluate(Method& method, const TaskData& data, int after_task, RunState& state) const;

  // A distributed run: each rank evaluates every size-th batch and the counts are
  // summed, so every rank fills the same rows.
  void set_world(World* world) { world_ = world; }

 private:
  EvalOptions options_;
  c10::Device device_;
  Amp amp_;
  World* world_ = nullptr;
};

}  // namespace sscl
