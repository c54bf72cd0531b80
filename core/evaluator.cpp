#include "core/evaluator.h"

#include <torch/torch.h>

#include <limits>

#include "core/error.h"
#include "core/method.h"
#include "core/task_data.h"
#include "core/world.h"

namespace sscl {

namespace {

// Boolean mask [num_classes] that is true for `classes`.
torch::Tensor class_mask(const std::vector<int64_t>& classes, int64_t num_classes, const torch::Device& device) {
  auto mask = torch::zeros({num_classes}, torch::kBool);
  for (int64_t c : classes) mask[c] = true;
  return mask.to(device);
}

}  // namespace

void EvalOptions::declare(OptionSpec<EvalOptions>& o) {
  o.key("batch_size", &EvalOptions::batch_size, "test images per forward pass").above(0);
  o.key("all_tasks", &EvalOptions::all_tasks, "also evaluate tasks not trained yet (forward transfer)");
  o.key("amp", &EvalOptions::amp, "evaluate in train.amp's precision; false: in float32");
}

void Evaluator::evaluate(Method& method, const TaskData& data, int after_task, RunState& state) const {
  torch::NoGradGuard no_grad;
  AutocastScope autocast(amp_, device_.type());
  method.model()->eval();
  const int64_t num_classes = data.num_classes();
  std::vector<int64_t> seen;
  for (int t = 0; t <= after_task; ++t)
    for (int64_t c : data.classes(t)) seen.push_back(c);
  const auto seen_mask = class_mask(seen, num_classes, device_);
  const int last = options_.all_tasks ? data.num_tasks() - 1 : after_task;
  const int rank = world_ ? world_->rank() : 0, ranks = world_ ? world_->size() : 1;
  // [task][correct task-IL, correct class-IL, count], summed over the ranks at the end.
  auto counts = torch::zeros({last + 1, 3}, torch::kLong);
  for (int task = 0; task <= last; ++task) {
    const auto task_mask = class_mask(data.classes(task), num_classes, device_);
    const float neg_inf = -std::numeric_limits<float>::infinity();
    int64_t correct_til = 0, correct_cil = 0, count = 0;
    const int64_t batches = data.num_eval_batches(task, options_.batch_size);
    for (int64_t b = rank; b < batches; b += ranks) {
      EvalBatch batch = data.eval_batch(task, b, options_.batch_size);
      const auto labels = batch.labels.to(device_);
      const auto logits = method.predict(batch.images.to(device_));
      correct_til += logits.masked_fill(~task_mask, neg_inf).argmax(1).eq(labels).sum().item<int64_t>();
      correct_cil += logits.masked_fill(~seen_mask, neg_inf).argmax(1).eq(labels).sum().item<int64_t>();
      count += labels.size(0);
    }
    counts[task][0] = correct_til;
    counts[task][1] = correct_cil;
    counts[task][2] = count;
  }
  if (world_ && world_->distributed()) {
    std::vector<at::Tensor> all{counts};
    world_->all_reduce_sum(all);
  }
  for (int task = 0; task <= last; ++task) {
    const auto c = counts[task];
    const int64_t count = c[2].item<int64_t>();
    check<TrainingError>(count > 0, "task " + std::to_string(task) + " has no evaluation images");
    state.task_il.set(after_task, task, 100.0 * c[0].item<int64_t>() / count);
    state.class_il.set(after_task, task, 100.0 * c[1].item<int64_t>() / count);
  }
}

}  // namespace sscl
