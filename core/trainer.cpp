#include "core/trainer.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <iomanip>
#include <sstream>

#include "core/error.h"
#include "core/state.h"
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

std::string signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal);
}

// The method's and its semi-supervised loss's state, as one root.
struct MethodState : Stateful {
  explicit MethodState(Method& m) : method(m) {}
  void visit_state(StateVisitor& visitor) override { method.visit_all_state(visitor); }
  Method& method;
};

// The model's parameters and buffers, the method's state and every task's
// labeled images (active learning reveals labels): what every rank of a
// distributed run must hold alike.
struct RankState : Stateful {
  RankState(Method& m, const TaskData& d) : method(m), data(d) {}
  void visit_state(StateVisitor& visitor) override {
    visitor("model", *method.model());
    method.visit_all_state(visitor);
    for (int t = 0; t < data.num_tasks(); ++t) {
      auto set = data.labeled_set(t);
      visitor("data.labeled_ids." + std::to_string(t), set.ids);
      visitor("data.labels." + std::to_string(t), set.labels);
    }
  }
  Method& method;
  const TaskData& data;
};

}  // namespace

Trainer::Trainer(TrainerOptions options, Method& method, TaskData& data, HookDispatcher& hooks, Optimizer optimizer,
                 LrSchedule schedule, Evaluator evaluator, torch::Device device)
    : options_(std::move(options)),
      method_(method),
      data_(data),
      hooks_(hooks),
      optimizer_factory_(std::move(optimizer)),
      schedule_(std::move(schedule)),
      evaluator_(std::move(evaluator)),
      device_(device) {
  if (options_.grad_scaling) scaler_.emplace();
  world_ = options_.world ? options_.world : single_process_world();
  if (world_->distributed()) {
    check<ConfigError>(data_.set_shard(world_->rank(), world_->size()),
                       "this task sequence cannot hand each rank its slice of a batch: it does not run distributed");
    evaluator_.set_world(world_.get());
  }
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

const RunState& Trainer::run() { return run_from(nullptr); }

const RunState& Trainer::resume(const std::string& checkpoint) { return run_from(&checkpoint); }

const RunState& Trainer::run_from(const std::string* checkpoint) {
  broadcast_model();
  hooks_.call(&Hook::before_run, state_);
  // Built after the method's before_run, which may add parameters.
  make_optimizer();
  int first_task = 0;
  int64_t first_iter = 0;
  bool mid_task = false;
  if (checkpoint) {
    const auto position = restore(*checkpoint);
    first_task = position.evaluated ? position.task + 1 : position.task;
    first_iter = position.evaluated ? 0 : position.next_iter;
    mid_task = !position.evaluated;
  }
  for (int task = first_task; task < state_.num_tasks; ++task) {
    train_task(task, mid_task && task == first_task ? first_iter : 0, mid_task && task == first_task);
    hooks_.call(&Hook::before_val, state_);
    const auto start = Clock::now();
    evaluator_.evaluate(method_, data_, task, state_);
    state_.task_timings.back().eval_s = ms_since(start) / 1000.0;
    hooks_.call(&Hook::after_val, state_);
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
    if (method_.traits().fresh_optimizer_each_task) make_optimizer();
  }
  // train_s counts the task's wall time over every process that trained it.
  const double earlier_s = state_.task_timings.back().train_s;
  const auto start = Clock::now();
  const auto update_train_s = [&] { state_.task_timings.back().train_s = earlier_s + ms_since(start) / 1000.0; };
  for (int64_t iter = first_iter; iter < state_.iters_per_task; ++iter) {
    // A stop asked for before this iteration: the state is whole between iterations.
    // Ranks stop together, at the stop the last reduction agreed on.
    if (const int signal = world_->distributed() ? agreed_stop_ : stop_requested()) {
      state_.iter = iter;
      hooks_.call(&Hook::on_stop, state_);
      throw Interrupted(signal, "stopped by " + signal_name(signal) + " before iteration " + std::to_string(iter) +
                                    " of task " + std::to_string(task));
    }
    train_iteration(task, iter);
    update_train_s();  // current for a checkpoint between iterations
  }
  hooks_.call(&Hook::after_task, state_);
  if (world_->distributed()) {
    // A method's task-end work (importances, exemplars) is done: a rank whose
    // state parted from the others' is a bug to stop at, not to train on.
    RankState held(method_, data_);
    const auto digest = check_ranks_agree(
        *world_, held, "the model, method state and labeled sets at the end of task " + std::to_string(task + 1));
    std::ostringstream hex;
    hex << std::hex << std::setw(16) << std::setfill('0') << digest;
    state_.state_fingerprints.resize(static_cast<size_t>(task));
    state_.state_fingerprints.push_back(hex.str());
  }
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
  if (scaler_) archive.write("grad_scaler", torch::tensor(scaler_->state(), torch::kFloat64));
  torch::serialize::OutputArchive method;
  MethodState method_state(method_);
  StateVisitor::save(method_state, method);
  archive.write("method", method);
  const auto& hooks = hooks_.hooks();
  for (size_t i = 0; i < hooks.size(); ++i) {
    torch::serialize::OutputArchive hook;
    StateVisitor::save(*hooks[i], hook);
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

CheckpointPosition Trainer::position_of(const std::string& checkpoint) {
  torch::serialize::InputArchive archive;
  archive.load_from(checkpoint.data(), checkpoint.size());
  c10::IValue text;
  archive.read("position", text);
  return position_from_json(text.toStringRef());
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
  const int64_t written = format.item<int64_t>();
  check<IoError>(written >= kCheckpointFormat,
                 "checkpoint format " + std::to_string(written) + " was written by an older sscl (this build reads " +
                     std::to_string(kCheckpointFormat) + ": state fields by name); it cannot be resumed");
  check<IoError>(written == kCheckpointFormat, "checkpoint format " + std::to_string(written) +
                                                   " is newer than this build's (" + std::to_string(kCheckpointFormat) +
                                                   ")");
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
  MethodState method_state(method_);
  StateVisitor::load(method_state, method, device_);
  torch::serialize::InputArchive model;
  archive.read("model", model);
  method_.model()->load(model);
  const auto& hooks = hooks_.hooks();
  for (size_t i = 0; i < hooks.size(); ++i) {
    torch::serialize::InputArchive hook;
    if (archive.try_read("hook." + std::to_string(i) + "." + hooks[i]->hook_name(), hook))
      StateVisitor::load(*hooks[i], hook, device_);
  }
  make_optimizer();
  torch::serialize::InputArchive optimizer;
  archive.read("optimizer", optimizer);
  optimizer_->load(optimizer);
  if (scaler_) {
    at::Tensor scaler;
    if (archive.try_read("grad_scaler", scaler)) {
      scaler = scaler.contiguous();
      scaler_->load_state(std::vector<double>(scaler.data_ptr<double>(), scaler.data_ptr<double>() + scaler.numel()));
    }
  }
  load_generator_states(archive);

  state_ = std::move(saved);
  if (!position.evaluated) state_.iters_per_task = options_.iters_of(position.task);
  return position;
}

void Trainer::train_iteration(int task, int64_t iter) {
  const auto start = Clock::now();
  state_.iter = iter;
  state_.epoch = iter / options_.iters_per_virtual_epoch;
  // Time in the outer hooks (checkpoints) is not the iteration's.
  double outer_ms = 0;
  if (iter % options_.iters_per_virtual_epoch == 0) outer_ms += hooks_.call(&Hook::before_epoch, state_);
  outer_ms += hooks_.call(&Hook::before_iter, state_);
  state_.lr = schedule_.lr_at(iter, state_.iters_per_task);
  set_learning_rate(*optimizer_, state_.lr, lr_mults_);
  IterationTiming timing;

  auto mark = Clock::now();
  TrainBatch batch = to_device(data_.train_batch(task, iter), device_);
  timing.data_ms = ms_since(mark);

  mark = Clock::now();
  method_.model()->train();
  LossTerms terms;
  {
    // The forward passes and losses; backward runs outside, as torch.autocast asks.
    AutocastScope autocast(options_.amp, device_.type());
    terms = method_.step(batch, state_);
  }
  check<TrainingError>(!terms.empty(), "method '" + method_.name() + "' returned no loss term");
  torch::Tensor total = terms.front().second;
  for (size_t i = 1; i < terms.size(); ++i) total = total + terms[i].second;
  std::vector<double> values;
  for (const auto& term : terms) values.push_back(term.second.item<double>());
  if (world_->distributed()) timing.comm_ms += reduce_across_ranks(values);
  state_.losses.clear();
  state_.loss = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    state_.losses.emplace_back(terms[i].first, values[i]);
    state_.loss += values[i];
  }
  if (!world_->distributed()) state_.loss = total.item<double>();
  timing.forward_ms = ms_since(mark);
  if (!std::isfinite(state_.loss)) {
    std::ostringstream terms_text;
    for (const auto& [name, value] : state_.losses) terms_text << " " << name << "=" << value;
    throw TrainingError("non-finite loss at task " + std::to_string(task) + ", iteration " + std::to_string(iter) +
                        ":" + terms_text.str());
  }

  mark = Clock::now();
  optimizer_->zero_grad();
  GradSync* sync = world_->distributed() ? &grad_sync() : nullptr;
  if (sync) sync->arm();
  if (total.requires_grad()) (scaler_ ? scaler_->scale(total) : total).backward();
  // Every rank's gradients are the mean over the ranks before anything reads them.
  if (sync) timing.comm_ms += sync->finish();
  if (world_->distributed()) write_buffer_means();
  // fp16: gradients back at their true size before any method looks at them; a
  // step with an overflowed gradient is skipped (state.amp_skipped_steps counts them).
  bool finite = true;
  if (scaler_) {
    std::vector<at::Tensor> params;
    for (const auto& group : optimizer_->param_groups())
      params.insert(params.end(), group.params().begin(), group.params().end());
    finite = scaler_->unscale(params);
  }
  if (finite) {
    method_.after_backward(state_);
    optimizer_->step();
  }
  if (scaler_) {
    scaler_->update(finite);
    state_.amp_skipped_steps = scaler_->skipped_steps();
    state_.amp_loss_scale = scaler_->current_scale();
  }
  sync_device();
  timing.backward_ms = ms_since(mark);

  hooks_.call(&Hook::after_iter, state_);
  if ((iter + 1) % options_.iters_per_virtual_epoch == 0 || iter + 1 == state_.iters_per_task)
    hooks_.call(&Hook::after_epoch, state_);
  ++state_.global_iter;

  const double total_ms = ms_since(start) - outer_ms;
  timing.other_ms = std::max(0.0, total_ms - timing.data_ms - timing.forward_ms - timing.backward_ms);
  state_.last_timing = timing;
  auto& task_timing = state_.task_timings.back();
  task_timing.iteration_ms.push_back(static_cast<float>(total_ms));
  task_timing.sum.data_ms += timing.data_ms;
  task_timing.sum.forward_ms += timing.forward_ms;
  task_timing.sum.backward_ms += timing.backward_ms;
  task_timing.sum.other_ms += timing.other_ms;
  task_timing.sum.comm_ms += timing.comm_ms;
}

void Trainer::make_optimizer() {
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& p : method_.model()->named_parameters()) named.emplace_back(p.key(), p.value());
  auto groups = param_groups(method_.trainable_parameters(), named, optimizer_factory_.lr_mult);
  lr_mults_.clear();
  for (const auto& g : groups) lr_mults_.push_back(g.lr_mult);
  optimizer_ = optimizer_factory_.make(std::move(groups));
}

void Trainer::broadcast_model() {
  if (!world_->distributed()) return;
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> tensors = method_.model()->parameters();
  for (const auto& b : method_.model()->buffers()) tensors.push_back(b);
  world_->broadcast(tensors, 0);
}

namespace {

// What the ranks average each iteration besides the losses: BatchNorm's running
// statistics, the model's and those of the method's own modules.
std::vector<at::Tensor> floating_buffers(Method& method) {
  std::vector<at::Tensor> buffers;
  for (const auto& b : method.model()->buffers())
    if (b.is_floating_point()) buffers.push_back(b);
  for (const auto& b : method.extra_buffers())
    if (b.is_floating_point()) buffers.push_back(b);
  return buffers;
}

}  // namespace

double Trainer::reduce_across_ranks(std::vector<double>& losses) {
  const auto start = Clock::now();
  torch::NoGradGuard no_grad;
  // One all-reduce: [losses..., stop signal, floating buffers...].
  const auto buffers = floating_buffers(method_);
  std::vector<at::Tensor> parts{torch::tensor(losses, torch::kFloat64),
                                torch::tensor({static_cast<double>(stop_requested())}, torch::kFloat64)};
  for (const auto& b : buffers) parts.push_back(b.detach().reshape({-1}).to(torch::kCPU, torch::kFloat64));
  std::vector<at::Tensor> flat{torch::cat(parts)};
  world_->all_reduce_sum(flat);
  const double n = world_->size();
  const auto values = flat[0].contiguous();
  const double* v = values.data_ptr<double>();
  for (size_t i = 0; i < losses.size(); ++i) losses[i] = v[i] / n;
  // A signal number summed over the ranks that got it: any non-zero stops every rank.
  const double signals = v[losses.size()];
  if (signals != 0) agreed_stop_ = stop_requested() ? stop_requested() : signals == SIGINT ? SIGINT : SIGTERM;
  buffer_means_ =
      values
          .narrow(0, static_cast<int64_t>(losses.size()) + 1, values.numel() - static_cast<int64_t>(losses.size()) - 1)
          .div(n);
  return ms_since(start);
}

void Trainer::write_buffer_means() {
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (auto& b : floating_buffers(method_)) {
    const int64_t k = b.numel();
    b.copy_(buffer_means_.narrow(0, offset, k).view(b.sizes()).to(b.device(), b.scalar_type()));
    offset += k;
  }
  buffer_means_ = at::Tensor();
}

GradSync& Trainer::grad_sync() {
  if (!grad_sync_ || synced_optimizer_ != optimizer_.get()) {
    std::vector<at::Tensor> params;
    for (const auto& group : optimizer_->param_groups())
      params.insert(params.end(), group.params().begin(), group.params().end());
    grad_sync_ = std::make_unique<GradSync>(*world_, std::move(params), options_.bucket_mb);
    synced_optimizer_ = optimizer_.get();
  }
  return *grad_sync_;
}

void Trainer::sync_device() const {
  if (device_.is_cuda()) torch::cuda::synchronize(device_.index());
}

}  // namespace sscl
