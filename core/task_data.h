// The trainer's view of a task sequence. tasks/ implements it (Split-Semi tasks);
// core knows nothing of datasets. Batches are a pure function of (task, iteration)
// so that a run can be reproduced and resumed, whatever the loader's threading.
#pragma once

#include <cstdint>
#include <vector>

#include "core/batch.h"
#include "core/nn/backbone.h"

namespace sscl {

class TaskData {
 public:
  virtual ~TaskData() = default;

  virtual int num_tasks() const = 0;
  virtual int64_t num_classes() const = 0;
  virtual InputShape input_shape() const = 0;
  virtual const std::vector<int64_t>& classes(int task) const = 0;

  // Whether train batches carry the unlabeled views (skipped for methods that
  // would ignore them: no decoding or augmentation is spent on them).
  virtual void set_load_unlabeled(bool load) = 0;

  // The training batch of iteration `iter` of `task`, on the CPU. An
  // implementation may prepare the next one in the background.
  virtual TrainBatch train_batch(int task, int64_t iter) = 0;

  // Evaluation data of `task` in batches of at most `batch_size` images.
  virtual int64_t num_eval_batches(int task, int64_t batch_size) const = 0;
  virtual EvalBatch eval_batch(int task, int64_t batch, int64_t batch_size) const = 0;
};

}  // namespace sscl
