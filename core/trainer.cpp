#include "core/trainer.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <sstream>

#include "core/error.h"

namespace sscl {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

TrainBatch to_device(TrainBatch batch, const torch::Device& device) {
  if (device.is_cpu()) return batch;
  auto move = [&](at::Tensor& t) {
    if (t.defined()) t = t.to(device, /*non_blocking=*/true);
  };
  move(batch.labeled.images);
  move(batch.labeled.labels);
  move(batch.unlabeled.weak);
  move(batch.unlabeled.strong);
  return batch;
}

// Boolean mask [num_classes] that is true for `classes`.
torch::Tensor class_mask(const std::vector<int64_t>& classes, int64_t num_classes, const torch::Device& device) {
  auto mask = torch::zeros({num_classes}, torch::kBool);
  for (int64_t c : classes) mask[c] = true;
  return mask.to(device);
}

}  // namespace

TrainerOptions TrainerOptions::from_config(const Config& config) {
  TrainerOptions o;
  auto train = config.section("train");
  auto eval = config.section("eval");
  o.iters_per_task = train.get_or("iters_per_task", o.iters_per_task);
  o.iters_per_virtual_epoch = train.get_or("iters_per_virtual_epoch", o.iters_per_virtual_epoch);
  o.eval_batch_size = eval.get_or("batch_size", o.eval_batch_size);
  o.eval_all_tasks = eval.get_or("all_tasks", o.eval_all_tasks);
  if (o.iters_per_task <= 0) train.fail("iters_per_task", "must be > 0");
  if (o.iters_per_virtual_epoch <= 0) train.fail("iters_per_virtual_epoch", "must be > 0");
  if (o.eval_batch_size <= 0) eval.fail("batch_size", "must be > 0");
  return o;
}

Trainer::Trainer(TrainerOptions options, Method& method, TaskData& data, HookDispatcher& hooks,
                 OptimizerOptions optimizer, LrScheduleOptions schedule, torch::Device device)
    : options_(options),
      method_(method),
      data_(data),
      hooks_(hooks),
      optimizer_options_(std::move(optimizer)),
      schedule_(std::move(schedule), optimizer_options_.lr),
      device_(device) {
  hooks_.set_method_hooks(method_.lifecycle_hooks());
  data_.set_load_unlabeled(method_.uses_unlabeled());
  state_.num_tasks = data_.num_tasks();
  check<ConfigError>(options_.task_iters.empty() || static_cast<int>(options_.task_iters.size()) == state_.num_tasks,
                     "trainer: task_iters needs one entry per task");
  state_.iters_per_task = options_.iters_of(0);
  state_.iters_per_virtual_epoch = options_.iters_per_virtual_epoch;
  state_.task_il = AccuracyMatrix(state_.num_tasks);
  state_.class_il = AccuracyMatrix(state_.num_tasks);
}

const RunState& Trainer::run() {
  hooks_.call(&Hook::before_run, state_);
  // Built after the method's before_run, which may add parameters.
  optimizer_ = make_optimizer(optimizer_options_, method_.trainable_parameters());
  for (int task = 0; task < state_.num_tasks; ++task) {
    train_task(task);
    hooks_.call(&Hook::before_val, state_);
    const auto start = Clock::now();
    evaluate(task);
    state_.task_timings.back().eval_s = ms_since(start) / 1000.0;
    hooks_.call(&Hook::after_val, state_);
  }
  hooks_.call(&Hook::after_run, state_);
  return state_;
}

void Trainer::train_task(int task) {
  state_.task = task;
  state_.iter = 0;
  state_.epoch = 0;
  state_.task_timings.emplace_back();
  state_.iters_per_task = options_.iters_of(task);
  state_.task_timings.back().iteration_ms.reserve(state_.iters_per_task);
  hooks_.call(&Hook::before_task, state_);
  if (method_.fresh_optimizer_each_task())
    optimizer_ = make_optimizer(optimizer_options_, method_.trainable_parameters());
  const auto start = Clock::now();
  for (int64_t iter = 0; iter < state_.iters_per_task; ++iter) train_iteration(task, iter);
  state_.task_timings.back().train_s = ms_since(start) / 1000.0;
  hooks_.call(&Hook::after_task, state_);
}

void Trainer::train_iteration(int task, int64_t iter) {
  const auto start = Clock::now();
  state_.iter = iter;
  state_.epoch = iter / options_.iters_per_virtual_epoch;
  if (iter % options_.iters_per_virtual_epoch == 0) hooks_.call(&Hook::before_epoch, state_);
  hooks_.call(&Hook::before_iter, state_);
  state_.lr = schedule_.lr_at(iter, state_.iters_per_task);
  set_learning_rate(*optimizer_, state_.lr);
  IterationTiming timing;

  auto mark = Clock::now();
  TrainBatch batch = to_device(data_.train_batch(task, iter), device_);
  timing.data_ms = ms_since(mark);

  mark = Clock::now();
  method_.model()->train();
  LossTerms terms = method_.step(batch, state_);
  check<TrainingError>(!terms.empty(), "method '" + method_.name() + "' returned no loss term");
  torch::Tensor total = terms.front().second;
  for (size_t i = 1; i < terms.size(); ++i) total = total + terms[i].second;
  state_.losses.clear();
  for (const auto& [name, value] : terms) state_.losses.emplace_back(name, value.item<double>());
  state_.loss = total.item<double>();
  timing.forward_ms = ms_since(mark);
  if (!std::isfinite(state_.loss)) {
    std::ostringstream terms_text;
    for (const auto& [name, value] : state_.losses) terms_text << " " << name << "=" << value;
    throw TrainingError("non-finite loss at task " + std::to_string(task) + ", iteration " + std::to_string(iter) +
                        ":" + terms_text.str());
  }

  mark = Clock::now();
  optimizer_->zero_grad();
  if (total.requires_grad()) total.backward();
  method_.after_backward(state_);
  optimizer_->step();
  sync_device();
  timing.backward_ms = ms_since(mark);

  hooks_.call(&Hook::after_iter, state_);
  if ((iter + 1) % options_.iters_per_virtual_epoch == 0 || iter + 1 == state_.iters_per_task)
    hooks_.call(&Hook::after_epoch, state_);
  ++state_.global_iter;

  const double total_ms = ms_since(start);
  timing.other_ms = std::max(0.0, total_ms - timing.data_ms - timing.forward_ms - timing.backward_ms);
  state_.last_timing = timing;
  auto& task_timing = state_.task_timings.back();
  task_timing.iteration_ms.push_back(static_cast<float>(total_ms));
  task_timing.sum.data_ms += timing.data_ms;
  task_timing.sum.forward_ms += timing.forward_ms;
  task_timing.sum.backward_ms += timing.backward_ms;
  task_timing.sum.other_ms += timing.other_ms;
}

void Trainer::evaluate(int after_task) {
  torch::NoGradGuard no_grad;
  method_.model()->eval();
  const int64_t num_classes = data_.num_classes();
  std::vector<int64_t> seen;
  for (int t = 0; t <= after_task; ++t)
    for (int64_t c : data_.classes(t)) seen.push_back(c);
  const auto seen_mask = class_mask(seen, num_classes, device_);
  const int last = options_.eval_all_tasks ? state_.num_tasks - 1 : after_task;
  for (int task = 0; task <= last; ++task) {
    const auto task_mask = class_mask(data_.classes(task), num_classes, device_);
    const float neg_inf = -std::numeric_limits<float>::infinity();
    int64_t correct_til = 0, correct_cil = 0, count = 0;
    const int64_t batches = data_.num_eval_batches(task, options_.eval_batch_size);
    for (int64_t b = 0; b < batches; ++b) {
      EvalBatch batch = data_.eval_batch(task, b, options_.eval_batch_size);
      const auto labels = batch.labels.to(device_);
      const auto logits = method_.predict(batch.images.to(device_));
      correct_til += logits.masked_fill(~task_mask, neg_inf).argmax(1).eq(labels).sum().item<int64_t>();
      correct_cil += logits.masked_fill(~seen_mask, neg_inf).argmax(1).eq(labels).sum().item<int64_t>();
      count += labels.size(0);
    }
    check<TrainingError>(count > 0, "task " + std::to_string(task) + " has no evaluation images");
    state_.task_il.set(after_task, task, 100.0 * correct_til / count);
    state_.class_il.set(after_task, task, 100.0 * correct_cil / count);
  }
}

void Trainer::sync_device() const {
  if (device_.is_cuda()) torch::cuda::synchronize(device_.index());
}

}  // namespace sscl
