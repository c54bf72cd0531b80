#include "core/trainer.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <sstream>

#include "core/error.h"
#include "core/logging.h"
#include "core/stop_request.h"

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

std::string signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal);
}

constexpr int64_t kCheckpointFormat = 1;

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

void Trainer::set_checkpoint_writer(CheckpointWriter writer, int64_t interval) {
  checkpoint_writer_ = std::move(writer);
  checkpoint_interval_ = interval;
}

const RunState& Trainer::run() { return run_from(nullptr); }

const RunState& Trainer::resume(const std::string& checkpoint) { return run_from(&checkpoint); }

const RunState& Trainer::run_from(const std::string* checkpoint) {
  hooks_.call(&Hook::before_run, state_);
  // Built after the method's before_run, which may add parameters.
  optimizer_ = make_optimizer(optimizer_options_, method_.trainable_parameters());
  int first_task = 0;
  int64_t first_iter = 0;
  bool mid_task = false;
  if (checkpoint) {
    const auto position = restore(*checkpoint);
    resumed_from_ = position;
    first_task = position.evaluated ? position.task + 1 : position.task;
    first_iter = position.evaluated ? 0 : position.next_iter;
    mid_task = !position.evaluated;
  }
  for (int task = first_task; task < state_.num_tasks; ++task) {
    train_task(task, mid_task && task == first_task ? first_iter : 0, mid_task && task == first_task);
    hooks_.call(&Hook::before_val, state_);
    const auto start = Clock::now();
    evaluate(task);
    state_.task_timings.back().eval_s = ms_since(start) / 1000.0;
    hooks_.call(&Hook::after_val, state_);
    write_checkpoint({task, state_.iters_per_task, true, state_.global_iter});
  }
  hooks_.call(&Hook::after_run, state_);
  return state_;
}

void Trainer::train_task(int task, int64_t first_iter, bool resumed) {
  if (!resumed) {
    state_.task = task;
    state_.iter = 0;
    state_.epoch = 0;
    state_.task_timings.emplace_back();
    state_.iters_per_task = options_.iters_of(task);
    state_.task_timings.back().iteration_ms.reserve(state_.iters_per_task);
    hooks_.call(&Hook::before_task, state_);
    if (method_.fresh_optimizer_each_task())
      optimizer_ = make_optimizer(optimizer_options_, method_.trainable_parameters());
  }
  // train_s counts the task's wall time over every process that trained it.
  const double earlier_s = state_.task_timings.back().train_s;
  const auto start = Clock::now();
  const auto update_train_s = [&] { state_.task_timings.back().train_s = earlier_s + ms_since(start) / 1000.0; };
  for (int64_t iter = first_iter; iter < state_.iters_per_task; ++iter) {
    // A stop asked for before this iteration: the state is whole between iterations.
    if (const int signal = stop_requested()) {
      update_train_s();
      const std::string where = write_checkpoint({task, iter, false, state_.global_iter});
      throw Interrupted(
          signal, "stopped by " + signal_name(signal) + " before iteration " + std::to_string(iter) + " of task " +
                      std::to_string(task) +
                      (where.empty() ? "; checkpoints are off, nothing was saved" : "; checkpoint " + where));
    }
    train_iteration(task, iter);
    if (checkpoint_interval_ > 0 && state_.global_iter % checkpoint_interval_ == 0 &&
        iter + 1 < state_.iters_per_task) {
      update_train_s();
      write_checkpoint({task, iter + 1, false, state_.global_iter});
    }
  }
  update_train_s();
  hooks_.call(&Hook::after_task, state_);
}

std::string Trainer::checkpoint_bytes(const CheckpointPosition& position) const {
  torch::serialize::OutputArchive archive;
  archive.write("format", torch::tensor({kCheckpointFormat}));
  archive.write("position", c10::IValue(position_to_json(position)));
  archive.write("method_name", c10::IValue(method_.display_name()));
  archive.write("run_state", c10::IValue(run_state_to_json(state_)));
  torch::serialize::OutputArchive model;
  method_.model()->save(model);
  archive.write("model", model);
  torch::serialize::OutputArchive optimizer;
  optimizer_->save(optimizer);
  archive.write("optimizer", optimizer);
  torch::serialize::OutputArchive method;
  method_.save_all(method);
  archive.write("method", method);
  const auto& hooks = hooks_.hooks();
  for (size_t i = 0; i < hooks.size(); ++i) {
    torch::serialize::OutputArchive hook;
    hooks[i]->save_state(hook);
    archive.write("hook." + std::to_string(i) + "." + hooks[i]->hook_name(), hook);
  }
  // The labels revealed so far (active learning adds some mid-task).
  for (int t = 0; t < data_.num_tasks(); ++t) {
    const auto labeled = data_.labeled_set(t);
    archive.write("data.labeled_ids." + std::to_string(t), labeled.ids);
    archive.write("data.labels." + std::to_string(t), labeled.labels);
  }
  save_generator_states(archive);
  std::ostringstream bytes;
  archive.save_to(bytes);
  return bytes.str();
}

std::string Trainer::write_checkpoint(const CheckpointPosition& position) {
  if (!checkpoint_writer_) return {};
  const auto start = Clock::now();
  const std::string bytes = checkpoint_bytes(position);
  const std::string where = checkpoint_writer_(bytes, position);
  get_logger("checkpoint")
      ->info("task {} iteration {}{}: {} ({:.1f} MB, {:.0f} ms)", position.task, position.next_iter,
             position.evaluated ? " (task end)" : "", where, bytes.size() / 1e6, ms_since(start));
  return where;
}

CheckpointPosition Trainer::restore(const std::string& checkpoint) {
  try {
    return restore_archive(checkpoint);
  } catch (const c10::Error& e) {
    // LibTorch's message: a missing key or a tensor of another shape.
    const std::string what = e.what_without_backtrace();
    throw IoError("the checkpoint does not fit this run (" + what.substr(0, what.find('\n')) + ")");
  }
}

CheckpointPosition Trainer::restore_archive(const std::string& checkpoint) {
  torch::serialize::InputArchive archive;
  archive.load_from(checkpoint.data(), checkpoint.size());
  at::Tensor format;
  archive.read("format", format);
  check<IoError>(format.item<int64_t>() == kCheckpointFormat,
                 "checkpoint format " + std::to_string(format.item<int64_t>()) + " is not this build's (" +
                     std::to_string(kCheckpointFormat) + ")");
  c10::IValue text;
  archive.read("method_name", text);
  check<IoError>(text.toStringRef() == method_.display_name(), "the checkpoint is of method '" + text.toStringRef() +
                                                                   "', this run's is '" + method_.display_name() + "'");
  archive.read("position", text);
  const CheckpointPosition position = position_from_json(text.toStringRef());
  archive.read("run_state", text);
  RunState saved = run_state_from_json(text.toStringRef());
  check<IoError>(saved.num_tasks == state_.num_tasks && position.task < state_.num_tasks,
                 "the checkpoint is of a run with " + std::to_string(saved.num_tasks) + " tasks, the config has " +
                     std::to_string(state_.num_tasks));

  // Labels first: methods may look at the labeled sets when they load.
  for (int t = 0; t < data_.num_tasks(); ++t) {
    at::Tensor ids, labels;
    archive.read("data.labeled_ids." + std::to_string(t), ids);
    archive.read("data.labels." + std::to_string(t), labels);
    const auto current = data_.labeled_set(t);
    const int64_t known = current.ids.numel();
    check<IoError>(ids.numel() >= known && ids.narrow(0, 0, known).equal(current.ids),
                   "the checkpoint's labeled images of task " + std::to_string(t) +
                       " do not start with this config's split (another seed or data.labels_per_class?)");
    if (ids.numel() > known)
      data_.add_labels(t, ids.narrow(0, known, ids.numel() - known), labels.narrow(0, known, ids.numel() - known));
  }
  // The method first: it may add parameters (PNN's columns) that the model and
  // the optimizer then hold.
  torch::serialize::InputArchive method;
  archive.read("method", method);
  method_.load_all(method);
  torch::serialize::InputArchive model;
  archive.read("model", model);
  method_.model()->load(model);
  const auto& hooks = hooks_.hooks();
  for (size_t i = 0; i < hooks.size(); ++i) {
    torch::serialize::InputArchive hook;
    if (archive.try_read("hook." + std::to_string(i) + "." + hooks[i]->hook_name(), hook)) hooks[i]->load_state(hook);
  }
  optimizer_ = make_optimizer(optimizer_options_, method_.trainable_parameters());
  torch::serialize::InputArchive optimizer;
  archive.read("optimizer", optimizer);
  optimizer_->load(optimizer);
  load_generator_states(archive);

  state_ = std::move(saved);
  if (!position.evaluated) state_.iters_per_task = options_.iters_of(position.task);
  return position;
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
