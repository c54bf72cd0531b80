#include "core/run_builder.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>
#include <thread>

#include "core/cuda_support.h"
#include "core/describe.h"
#include "core/device.h"
#include "core/environment.h"
#include "core/error.h"
#include "core/hook_registry.h"
#include "core/nn/batch_norm.h"
#include "core/nn/pretrained.h"
#include "core/text.h"

namespace sscl {

SSCL_DEFINE_REGISTRY(TaskSequenceRegistry, "task sequence", "data")

int64_t TaskData::iters_for_epochs(int task, double epochs) const {
  const auto labeled = static_cast<double>(labeled_set(task).ids.numel());
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(epochs * labeled / static_cast<double>(batch_size()))));
}

void TrainOptions::declare(OptionSpec<TrainOptions>& o) {
  o.key("seed", &TrainOptions::seed, "the run's seed: data split, batches, augmentation, initialisation").min(0);
  o.key("device", &TrainOptions::device, "auto | cpu | cuda | cuda:N");
  o.key("threads", &TrainOptions::threads, "torch intra-op threads; 0: OMP_NUM_THREADS, else every core").min(0);
  o.key("blas_threads", &TrainOptions::blas_threads, "OpenBLAS threads beside torch's pool; 0: its default").min(0);
  o.key("iters_per_task", &TrainOptions::iters_per_task, "training iterations of every task").above(0);
  o.key("iters_per_virtual_epoch", &TrainOptions::iters_per_virtual_epoch,
        "the reference's virtual epoch (before_epoch/after_epoch hooks)")
      .above(0);
  o.key("epochs_per_task", &TrainOptions::epochs_per_task,
        "epochs over each task's labeled images instead of iters_per_task")
      .above(0);
  o.key("save_model", &TrainOptions::save_model, "write RUN_DIR/model.pt at the end");
  o.key("amp", &TrainOptions::amp,
        "mixed precision of the forward passes and losses: autocast to bfloat16 (CPU or GPU) or float16 with a "
        "gradient scaler (GPU only); eval.amp chooses it for evaluation")
      .one_of({"none", "bf16", "fp16"});
  o.key("cudnn_benchmark", &TrainOptions::cudnn_benchmark,
        "GPU: cuDNN times its kernels for each new shape and keeps the fastest (faster, not bit-reproducible)");
  o.include(&TrainOptions::dist);
}

void DataSelection::declare(OptionSpec<DataSelection>& o) {
  o.key("sequence", &DataSelection::sequence, "the task sequence (a TaskSequenceRegistry entry)");
  o.key("scenario", &DataSelection::scenario,
        "what the learner is told at test time (domain-il: every task has every class)")
      .one_of({"task-il", "class-il", "domain-il"});
}

void ModelSelection::declare(OptionSpec<ModelSelection>& o) {
  o.key("backbone", &ModelSelection::backbone, "the feature extractor (a BackboneRegistry entry)");
  o.key("multi_head", &ModelSelection::multi_head, "one linear head per task (task-IL only)");
  o.key("channels_last", &ModelSelection::channels_last,
        "convolution weights and input images in NHWC memory order (faster convolutions on GPUs with tensor cores)");
  o.key("sync_bn", &ModelSelection::sync_bn,
        "BatchNorm normalises training batches over every rank's rows (SyncBatchNorm); one process computes "
        "the same way, so that its run and a distributed one differ only by the order of float sums");
  o.key("pretrained", &ModelSelection::pretrained,
        "start from the weights of this file: a torch.save(state_dict) zip (torchvision's names are matched), an "
        "sscl model.pt or checkpoint; tensors of other shapes are skipped and listed");
  o.key("pretrained_prefix", &ModelSelection::pretrained_prefix,
        "only the file's keys under this prefix are read, with it stripped (e.g. \"module.\", \"backbone.\")");
  o.key("pretrained_strict", &ModelSelection::pretrained_strict,
        "a missing, skipped or unexpected tensor is an error naming the key");
  o.key("freeze", &ModelSelection::freeze,
        "backbone: the backbone's parameters do not train and its BatchNorm stays in eval mode (a linear probe)")
      .one_of({"none", "backbone"});
  o.key("frozen_stages", &ModelSelection::frozen_stages,
        "mmcls's meaning: the stem (0) and the first N stages do not train, their BatchNorm in eval mode; -1: none")
      .min(-1);
}

void MethodSelection::declare(OptionSpec<MethodSelection>& o) {
  o.key("name", &MethodSelection::name, "the method (a MethodRegistry entry)").required();
  o.key("semi", &MethodSelection::semi, "a semi-supervised loss composed with the method; its keys in [method.<loss>]");
  o.key("train_mask", &MethodSelection::train_mask,
        "training logits: task = the current task's classes, none = all, auto = task in task-IL")
      .one_of({"auto", "task", "none"});
}

void LogOptions::declare(OptionSpec<LogOptions>& o) {
  o.key("hooks", &LogOptions::hooks, "hooks added to logger and metrics_jsonl (HookRegistry entries)");
  o.key("tensorboard", &LogOptions::tensorboard,
        "also write TensorBoard's event file, RUN_DIR/tb/events.out.tfevents.* (the tensorboard hook)");
}

RunBuilder::RunBuilder(const Config& config, std::filesystem::path run_dir, std::shared_ptr<World> world)
    : config_(config), run_dir_(std::move(run_dir)) {
  run_->world = world ? std::move(world) : single_process_world();
  const World& ranks = *run_->world;
  run_->train = read_options<TrainOptions>(config_.section("train"));
  run_->device = resolve_device(run_->train.device);
  if (ranks.distributed() && run_->device.is_cuda() && run_->train.device.find(':') == std::string::npos)
    run_->device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(ranks.local_rank()));
  run_->amp = parse_amp(run_->train.amp);
  check_amp(run_->amp, run_->device);
  if (run_->device.is_cuda()) {
    at::globalContext().setBenchmarkCuDNN(run_->train.cudnn_benchmark);
    reset_cuda_peak(run_->device.index());
  }
  run_->threads = set_torch_threads(run_->train.threads, ranks.local_size());
  run_->blas_threads = set_blas_threads(run_->train.blas_threads);
  run_->trainer_options.iters_per_task = run_->train.iters_per_task;
  run_->trainer_options.iters_per_virtual_epoch = run_->train.iters_per_virtual_epoch;
  run_->trainer_options.amp = run_->amp;
  run_->trainer_options.grad_scaling = run_->amp == Amp::kFP16;
  run_->trainer_options.world = run_->world;
  run_->trainer_options.bucket_mb = run_->train.dist.bucket_mb;
}

RunBuilder& RunBuilder::set_data(std::unique_ptr<TaskData> data) {
  run_->data = std::move(data);
  return *this;
}

RunBuilder& RunBuilder::set_checkpoint_writer(CheckpointHook::Writer writer) {
  checkpoint_writer_ = std::move(writer);
  return *this;
}

RunBuilder& RunBuilder::build_data() {
  const auto selection = read_options<DataSelection>(config_.section("data"));
  run_->scenario = parse_scenario(selection.scenario);
  const auto seed = static_cast<uint64_t>(run_->train.seed);
  if (!run_->data) run_->data = TaskSequenceRegistry::get().at(selection.sequence)(config_.section("data"), seed);
  run_->data->set_device(run_->device);
  const bool domains = run_->data->domain_incremental();
  if (run_->scenario == Scenario::kDomainIL && !domains)
    config_.section("data").fail("scenario",
                                 "domain-il needs tasks that share every class under changing inputs: set "
                                 "data.domain.kind (rotated, permuted) or a dataset of domains (image_folder_domains)");
  if (run_->scenario != Scenario::kDomainIL && domains)
    config_.section("data").fail("scenario",
                                 "the tasks are domains (every class in every task): set data.scenario = "
                                 "\"domain-il\"");
  if (run_->train.epochs_per_task) {
    // Epochs over each task's labeled images, as the supervised benchmarks count them.
    run_->data->schedule_in_epochs();
    for (int t = 0; t < run_->data->num_tasks(); ++t)
      run_->trainer_options.task_iters.push_back(run_->data->iters_for_epochs(t, *run_->train.epochs_per_task));
  }
  data_ = true;
  return *this;
}

namespace {

// Run::start_backbone: copies of the loaded and the frozen backbone tensors.
std::map<std::string, at::Tensor> start_backbone(Classifier& model, const PretrainedReport* pretrained) {
  const std::string under = "backbone.";
  std::set<std::string> keep;
  if (pretrained)
    for (const auto& name : pretrained->loaded)
      if (name.rfind(under, 0) == 0) keep.insert(name.substr(under.size()));
  const auto tensors = named_tensors(model->backbone());
  for (const auto& frozen : model->frozen_modules()) {
    if (frozen != "backbone" && frozen.rfind(under, 0) != 0) continue;  // outside the backbone
    const std::string inner = frozen == "backbone" ? "" : frozen.substr(under.size()) + ".";
    for (const auto& [name, tensor] : tensors)
      if (name.rfind(inner, 0) == 0) keep.insert(name);
  }
  std::map<std::string, at::Tensor> start;
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : tensors)
    if (keep.count(name)) start[name] = tensor.detach().clone();
  return start;
}

}  // namespace

RunBuilder& RunBuilder::build_model() {
  if (!data_) build_data();
  const auto section = config_.section("model");
  const auto selection = read_options<ModelSelection>(section);
  if (selection.multi_head && run_->scenario != Scenario::kTaskIL)
    section.fail("multi_head", "needs data.scenario = \"task-il\" (a head is chosen by the task id)");
  const TaskData& data = *run_->data;
  torch::manual_seed(static_cast<uint64_t>(run_->train.seed));
  auto backbone = BackboneRegistry::get().at(selection.backbone)(section, data.input_shape());
  std::vector<std::vector<int64_t>> task_classes;
  for (int t = 0; t < data.num_tasks(); ++t) task_classes.push_back(data.classes(t));
  run_->model = selection.multi_head ? Classifier(backbone, data.num_classes(), task_classes)
                                     : Classifier(backbone, data.num_classes());
  if (selection.pretrained) {
    try {
      run_->pretrained =
          std::make_shared<PretrainedReport>(load_pretrained(*run_->model, read_state_dict_file(*selection.pretrained),
                                                             selection.pretrained_prefix, selection.pretrained_strict));
    } catch (const Error& e) {
      section.fail("pretrained", e.what());
    }
  } else if (!selection.pretrained_prefix.empty() || selection.pretrained_strict) {
    section.fail(selection.pretrained_strict ? "pretrained_strict" : "pretrained_prefix", "needs model.pretrained");
  }
  run_->model->to(run_->device);
  if (selection.channels_last && !run_->model->set_channels_last())
    section.fail("channels_last", "backbone '" + selection.backbone +
                                      "' has no convolution (no 4-D weight) to run in channels-last order");
  if (selection.sync_bn) {
    try {
      run_->synced_batch_norms = sync_batch_norm(*run_->model, run_->world);
    } catch (const Error& e) {
      section.fail("sync_bn", e.what());
    }
    if (run_->synced_batch_norms == 0)
      section.fail("sync_bn", "backbone '" + selection.backbone + "' has no BatchNorm layer to synchronise");
  }
  try {
    run_->model->freeze(
        modules_to_freeze(run_->model->backbone(), selection.freeze == "backbone", selection.frozen_stages));
  } catch (const Error& e) {
    section.fail("frozen_stages", e.what());
  }
  run_->start_backbone = start_backbone(run_->model, run_->pretrained.get());
  model_ = true;
  return *this;
}

RunBuilder& RunBuilder::build_method() {
  if (!model_) build_model();
  const auto section = config_.section("method");
  const auto selection = read_options<MethodSelection>(section);
  run_->mask_train_logits = resolve_train_mask(selection.train_mask, run_->scenario);
  run_->method = MethodRegistry::get().at(selection.name)(section);
  // The loss's options sit next to its name: [method.<loss>].
  if (selection.semi)
    run_->method->set_semi(SemiLossRegistry::get().at(*selection.semi)(section.section(*selection.semi)));
  ensure_supported(*run_->method, run_->scenario);
  if (!run_->model->frozen_modules().empty() && !run_->method->traits().single_network)
    config_.section("model").fail(
        read_options<ModelSelection>(config_.section("model")).freeze == "backbone" ? "freeze" : "frozen_stages",
        "method '" + selection.name +
            "' trains networks beside the model (its columns), which the freeze would not "
            "reach; run it without freezing");
  run_->method_label = selection.name + (selection.semi ? "+" + *selection.semi : "");
  if (run_->world->distributed()) {
    // Only methods whose state is known to stay the same on every rank run distributed.
    if (!run_->method->traits().distributed)
      section.fail("name", "method '" + selection.name +
                               "' does not run distributed yet (its state would differ "
                               "between the ranks); run it with one process");
    // The loss composed by method.semi, or the loss that is the method itself
    // (method.name = "fixmatch" is SFT with it).
    if (const SemiLoss* semi = run_->method->semi(); semi && !semi->distributed())
      section.fail(selection.semi ? "semi" : "name",
                   "the semi-supervised loss '" + semi->name() +
                       "' does not run distributed with these options (a term or statistic of the whole batch "
                       "that a rank's slice would change; docs/distributed.md); run '" +
                       run_->method_label + "' with one process");
    const int64_t ranks = run_->world->size();
    if (run_->data->batch_size() % ranks != 0)
      config_.section("data").fail("batch_size", "the global batch of " + std::to_string(run_->data->batch_size()) +
                                                     " labeled images does not split evenly into " +
                                                     std::to_string(ranks) + " ranks");
  }

  const TaskData& data = *run_->data;
  MethodContext context;
  context.model = run_->model;
  context.device = run_->device;
  context.scenario = run_->scenario;
  context.seed = static_cast<uint64_t>(run_->train.seed);
  context.mask_train_logits = run_->mask_train_logits;
  for (int t = 0; t < data.num_tasks(); ++t) context.task_classes.push_back(data.classes(t));
  context.data = &data;
  context.batch_size = data.batch_size();
  context.run_dir = run_dir_;
  context.world = run_->world;
  const auto backbone = read_options<ModelSelection>(config_.section("model")).backbone;
  // A fresh backbone syncs its BatchNorm as the model's does.
  std::shared_ptr<World> bn_world = run_->synced_batch_norms > 0 ? run_->world : nullptr;
  context.make_backbone = [&config = config_, backbone, shape = data.input_shape(), device = run_->device, bn_world,
                           start = run_->start_backbone] {
    auto fresh = BackboneRegistry::get().at(backbone)(config.section("model"), shape);
    fresh->to(device);
    if (bn_world) sync_batch_norm(*fresh, bn_world);
    // The run's start (pretrained or frozen tensors) and the fresh initialisation elsewhere.
    torch::NoGradGuard no_grad;
    for (auto& [name, tensor] : named_tensors(*fresh))
      if (const auto it = start.find(name); it != start.end()) tensor.copy_(it->second);
    return fresh;
  };
  run_->method->attach(std::move(context));
  method_ = true;
  return *this;
}

RunBuilder& RunBuilder::build_hooks() {
  if (!method_) build_method();
  HookContext context{run_dir_, run_->method.get(), run_->data.get(), run_->device, {}, run_->world->is_main()};
  for (int t = 0; t < run_->data->num_tasks(); ++t) context.task_iters.push_back(run_->trainer_options.iters_of(t));
  const auto log = config_.section("log");
  std::vector<std::string> names{"logger", "metrics_jsonl"};
  const auto log_options = read_options<LogOptions>(log);
  for (const auto& name : log_options.hooks) names.push_back(name);
  if (log_options.tensorboard && std::find(names.begin(), names.end(), "tensorboard") == names.end())
    names.push_back("tensorboard");
  for (const auto& name : names) run_->hooks.add(HookRegistry::get().at(name)(log, context));
  // Hooks with a table of their own are on when the config has the table.
  for (const auto& name : SectionHookRegistry::get().names())
    if (!config_.section(name).child_keys().empty())
      run_->hooks.add(SectionHookRegistry::get().at(name)(config_.section(name), context));
  hooks_ = true;
  return *this;
}

RunBuilder& RunBuilder::build_trainer() {
  if (!hooks_) build_hooks();
  const Optimizer optimizer = build_optimizer(config_.section("optimizer"));
  for (const auto& entry : optimizer.lr_mult) {
    std::string names;
    bool fits = false;
    for (const auto& p : run_->model->named_parameters()) {
      fits = fits || p.key().find(entry.first) != std::string::npos;
      if (names.size() < 60) names += (names.empty() ? "'" : ", '") + p.key() + "'";
    }
    if (!fits)
      config_.section("optimizer")
          .fail("lr_mult." + entry.first, "is in the name of no parameter of the model (" + names + ", ...)");
  }
  run_->lr_mult = optimizer.lr_mult;
  LrSchedule schedule = build_lr_schedule(config_.section("lr_schedule"), optimizer.lr);
  Evaluator evaluator(read_options<EvalOptions>(config_.section("eval")), run_->device, run_->amp);
  run_->trainer = std::make_unique<Trainer>(run_->trainer_options, *run_->method, *run_->data, run_->hooks, optimizer,
                                            std::move(schedule), std::move(evaluator), run_->device);
  const auto checkpoint = read_options<CheckpointOptions>(config_.section("checkpoint"));
  if (checkpoint.enabled) {
    auto writer = checkpoint_writer_ ? *checkpoint_writer_ : CheckpointHook::to_dir(run_dir_, checkpoint.keep_last);
    if (!run_->world->is_main()) writer = nullptr;  // rank 0 writes the checkpoints
    Trainer* trainer = run_->trainer.get();
    run_->checkpoints = std::make_shared<CheckpointHook>(
        checkpoint, std::move(writer), [trainer](const CheckpointPosition& p) { return trainer->checkpoint_bytes(p); });
    run_->hooks.add_outer(run_->checkpoints);
  }
  trainer_ = true;
  return *this;
}

std::unique_ptr<Run> RunBuilder::finish() {
  if (!trainer_) build_trainer();
  check_tool_sections(config_);  // [pretrain] and the like: read, so their keys are checked
  config_.ensure_all_used();     // unknown keys are errors, before any file is written
  return std::move(run_);
}

namespace {

struct FineTuning {
  int64_t frozen_tensors = 0, frozen_parameters = 0;
  std::map<double, int64_t> group_parameters;  // multiplier -> parameters (elements) training at it
};

FineTuning fine_tuning(const Run& run) {
  FineTuning f;
  for (const auto& p : run.model->named_parameters()) {
    if (!p.value().requires_grad()) {
      ++f.frozen_tensors;
      f.frozen_parameters += p.value().numel();
    } else if (!run.lr_mult.empty()) {
      f.group_parameters[lr_mult_of(p.key(), run.lr_mult)] += p.value().numel();
    }
  }
  return f;
}

}  // namespace

std::vector<std::string> describe_fine_tuning(const Run& run) {
  std::vector<std::string> lines;
  const auto f = fine_tuning(run);
  const auto& frozen = run.model->frozen_modules();
  if (!frozen.empty())
    lines.push_back("frozen (model.freeze, model.frozen_stages): " + join(frozen, ", ") + ": " +
                    std::to_string(f.frozen_tensors) + " tensors, " + std::to_string(f.frozen_parameters) +
                    " parameters do not train; their BatchNorm stays in eval mode");
  if (!run.lr_mult.empty()) {
    std::vector<std::string> keys, groups;
    for (const auto& [key, mult] : run.lr_mult) keys.push_back(key + " = " + options_detail::format_number(mult));
    for (const auto& [mult, n] : f.group_parameters)
      groups.push_back(std::to_string(n) + " parameters at " + options_detail::format_number(mult) + " x lr");
    lines.push_back("learning-rate groups (optimizer.lr_mult: " + join(keys, ", ") + "): " + join(groups, ", "));
  }
  return lines;
}

nlohmann::json fine_tuning_json(const Run& run) {
  const auto& frozen = run.model->frozen_modules();
  if (frozen.empty() && run.lr_mult.empty()) return nullptr;
  const auto f = fine_tuning(run);
  nlohmann::json j;
  j["frozen_modules"] = frozen;
  j["frozen_tensors"] = f.frozen_tensors;
  j["frozen_parameters"] = f.frozen_parameters;
  j["lr_mult"] = nlohmann::json::object();
  for (const auto& [key, mult] : run.lr_mult) j["lr_mult"][key] = mult;
  j["group_parameters"] = nlohmann::json::array();
  for (const auto& [mult, n] : f.group_parameters)
    j["group_parameters"].push_back({{"lr_mult", mult}, {"parameters", n}});
  return j;
}

std::vector<std::string> describe_run(const Run& run) {
  std::vector<std::string> lines;
  const auto blas = loaded_blas_libraries();
  const std::string blas_text = join(blas, ", ");
  lines.push_back("sscl " + sscl_version() + " (" + git_commit() + "), LibTorch " + libtorch_version() + ", device " +
                  run.device.str() + ", " + std::to_string(run.threads) + " torch thread(s), BLAS " +
                  (blas.empty() ? "no BLAS library mapped" : blas_text) + " (" + run.blas_threads + ")");
  int64_t parameters = 0;
  for (const auto& p : run.model->parameters()) parameters += p.numel();
  lines.push_back(std::string("classifier: ") +
                  (run.model->multi_head() ? "one head per task" : "one head over all classes") + " (" +
                  std::to_string(parameters) + " parameters)");
  if (run.amp != Amp::kNone)
    lines.push_back("precision: " + amp_name(run.amp) + " autocast for the forward passes and losses" +
                    (run.amp == Amp::kFP16 ? ", a dynamic gradient scaler" : "") + " (train.amp)");
  if (run.pretrained) lines.push_back(describe(*run.pretrained));
  for (auto& line : describe_fine_tuning(run)) lines.push_back(std::move(line));
  if (run.model->channels_last()) lines.push_back("memory order: channels-last (model.channels_last)");
  if (run.synced_batch_norms > 0)
    lines.push_back("BatchNorm: " + std::to_string(run.synced_batch_norms) +
                    " layer(s) normalise each training batch over all " + std::to_string(run.world->size()) +
                    " rank(s) (model.sync_bn; one process computes as the ranks do)");
  lines.push_back(std::string("training logits: ") +
                  (run.mask_train_logits ? "masked to the current task's classes" : "all classes (no task mask)"));
  if (run.train.epochs_per_task) {
    std::string iters;
    for (auto v : run.trainer_options.task_iters) iters += (iters.empty() ? "" : ", ") + std::to_string(v);
    std::ostringstream epochs;
    epochs << *run.train.epochs_per_task;
    lines.push_back("iterations per task: " + epochs.str() + " epoch(s) over the labeled images at batch " +
                    std::to_string(run.data->batch_size()) + " = " + iters + " (train.iters_per_task not used)");
  }
  for (auto& line : run.data->describe(run.method->uses_unlabeled())) lines.push_back(std::move(line));
  return lines;
}

}  // namespace sscl
