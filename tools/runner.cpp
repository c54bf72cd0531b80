#include "tools/runner.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <sstream>

#include "core/atomic_file.h"
#include "core/checkpoint.h"
#include "core/device.h"
#include "core/environment.h"
#include "core/error.h"
#include "core/hook_registry.h"
#include "core/logging.h"
#include "core/method.h"
#include "core/trainer.h"
#include "tasks/split_semi_tasks.h"
#include "tools/active_summary.h"
#include "tools/results.h"

namespace sscl {

namespace fs = std::filesystem;

namespace {

int64_t count_parameters(torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  localtime_r(&t, &tm);
  std::ostringstream out;
  out << std::put_time(&tm, "%Y%m%d_%H%M%S");
  return out.str();
}

std::string read_text_or(const fs::path& file, const std::string& fallback) {
  std::ifstream in(file);
  if (!in) return fallback;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

std::string join_numbers(const std::vector<int64_t>& values) {
  std::string out;
  for (auto v : values) out += (out.empty() ? "" : ", ") + std::to_string(v);
  return out;
}

fs::path choose_run_dir(const TrainArgs& args, const std::string& name) {
  fs::path dir = args.work_dir ? *args.work_dir : args.work_dirs_root / name / timestamp();
  if (fs::exists(dir / "results.json"))
    throw IoError(dir.string() + ": already holds a finished run (results.json); choose another --work-dir");
  return dir;
}

void create_run_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir.string() + ": cannot create run directory: " + ec.message());
}

bool is_unfinished_with_checkpoint(const fs::path& dir) {
  return fs::exists(dir / "config.toml") && !fs::exists(dir / "results.json") && !CheckpointDir(dir, 1).list().empty();
}

// The run directory --resume names: the directory itself, or for "auto" the
// newest unfinished one with a checkpoint (none: a fresh run).
std::optional<fs::path> resume_dir(const TrainArgs& args) {
  if (!args.resume) return std::nullopt;
  if (*args.resume != "auto") {
    const fs::path dir = *args.resume;
    if (!args.config.empty())
      throw ConfigError("--resume " + dir.string() + ": give no config file, the run's own (" +
                        (dir / "config.toml").string() + ") is used");
    if (args.work_dir)
      throw ConfigError("--resume " + dir.string() + ": give no --work-dir, the run goes on in its own directory");
    if (!fs::exists(dir / "config.toml")) throw IoError(dir.string() + ": not a run directory (no config.toml)");
    if (fs::exists(dir / "results.json"))
      throw IoError(dir.string() + ": the run is finished (results.json); nothing to resume");
    if (CheckpointDir(dir, 1).list().empty())
      throw IoError(dir.string() + ": no checkpoint in " + (dir / "checkpoints").string() +
                    " (checkpoint.enabled = false, or killed before its first checkpoint)");
    return dir;
  }
  if (args.work_dir)
    return is_unfinished_with_checkpoint(*args.work_dir) ? std::optional(*args.work_dir) : std::nullopt;
  if (args.config.empty()) throw ConfigError("--resume auto needs the config file (or --work-dir) of the run");
  // work_dirs/<name>/<timestamp>: the name is the config's `name` or its file stem.
  Config config = Config::load(args.config);
  const std::string name = config.get_or<std::string>("name", args.config.stem().string());
  std::optional<fs::path> newest;
  std::error_code ec;
  for (fs::directory_iterator it(args.work_dirs_root / name, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory() && is_unfinished_with_checkpoint(it->path()) &&
        (!newest || it->path().filename() > newest->filename()))
      newest = it->path();
  return newest;
}

// The newest checkpoint that reads as an archive; unreadable ones are reported and skipped.
std::pair<fs::path, std::string> newest_readable_checkpoint(const fs::path& run_dir) {
  auto log = get_logger("checkpoint");
  std::string reasons;
  for (const auto& file : CheckpointDir(run_dir, 1).list()) {
    try {
      std::ifstream in(file, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!in.good() && !in.eof()) throw IoError("read failed");
      torch::serialize::InputArchive probe;
      probe.load_from(bytes.data(), bytes.size());
      return {file, std::move(bytes)};
    } catch (const std::exception& e) {
      const std::string first_line = std::string(e.what()).substr(0, std::string(e.what()).find('\n'));
      log->warn("{}: unreadable checkpoint, trying an older one ({})", file.string(), first_line);
      reasons += "\n  " + file.string() + ": " + first_line;
    }
  }
  throw IoError(run_dir.string() + ": no readable checkpoint" + reasons);
}

}  // namespace

TrainOutcome run_training(const TrainArgs& args) {
  const auto wall_start = std::chrono::steady_clock::now();
  auto log = get_logger("sscl");
  const std::optional<fs::path> resuming = resume_dir(args);
  if (args.resume && *args.resume == "auto" && !resuming)
    log->info("--resume auto: no unfinished run with a checkpoint; starting a new one");
  Config config = Config::load(resuming ? *resuming / "config.toml" : args.config);
  config.apply_overrides(args.overrides);

  // The run's name (work_dirs/<name>/...) is kept in the saved config, so that
  // re-running a run directory's config.toml gives the same name and hash.
  if (!config.has("name")) config.apply_override("name=\"" + args.config.stem().string() + "\"");

  // Everything is read and validated before anything is written.
  const std::string name = config.get<std::string>("name");
  auto train = config.section("train");
  const auto seed = static_cast<uint64_t>(train.get_or<int64_t>("seed", 0));
  const auto device = resolve_device(train.get_or<std::string>("device", "auto"));
  const int threads = set_torch_threads(train.get_or<int>("threads", 0));
  const std::string blas_threads = set_blas_threads(train.get_or<int>("blas_threads", 1));
  const Scenario scenario = parse_scenario(config.get_or<std::string>("data.scenario", "task-il"));
  auto trainer_options = TrainerOptions::from_config(config);
  const bool by_epochs = train.has("epochs_per_task");
  const double epochs_per_task = by_epochs ? train.get<double>("epochs_per_task") : 0.0;
  if (by_epochs && !(epochs_per_task > 0)) train.fail("epochs_per_task", "must be > 0");
  const auto optimizer_options = OptimizerOptions::from_config(config.section("optimizer"));
  const auto schedule_options = LrScheduleOptions::from_config(config.section("lr_schedule"));
  const auto data_options = SplitSemiOptions::from_config(config);
  const auto method_name = config.get<std::string>("method.name");
  const bool mask_train_logits =
      resolve_train_mask(config.get_choice("method.train_mask", "auto", {"auto", "task", "none"}), scenario);
  const auto backbone_name = config.get<std::string>("model.backbone");
  const bool multi_head = config.get_or<bool>("model.multi_head", false);
  if (multi_head && scenario != Scenario::kTaskIL)
    config.section("model").fail("multi_head", "needs data.scenario = \"task-il\" (a head is chosen by the task id)");
  const auto hook_names = config.get_or<std::vector<std::string>>("log.hooks", {});
  std::unique_ptr<Method> method = MethodRegistry::get().at(method_name)(config.section("method"));
  std::string method_label = method_name;  // "der+fixmatch" when composed
  if (config.has("method.semi")) {
    // The loss's options sit next to its name: [method.<loss>].
    const auto semi_name = config.get<std::string>("method.semi");
    method->set_semi(SemiLossRegistry::get().at(semi_name)(config.section("method").section(semi_name)));
    method_label += "+" + semi_name;
  }
  ensure_supported(*method, scenario);
  const auto& make_backbone = BackboneRegistry::get().at(backbone_name);
  const auto& load_dataset = DatasetRegistry::get().at(data_options.dataset);
  const auto checkpoint_options = CheckpointOptions::from_config(config.section("checkpoint"));
  const fs::path run_dir = resuming ? *resuming : choose_run_dir(args, name);
  HookDispatcher hooks;
  std::vector<std::string> all_hooks{"logger", "metrics_jsonl"};
  all_hooks.insert(all_hooks.end(), hook_names.begin(), hook_names.end());
  for (const auto& hook : all_hooks)
    hooks.add(HookRegistry::get().at(hook)(config.section("log"), HookContext{run_dir}));

  log->info("loading {} from {}", data_options.dataset, data_options.root);
  SplitSemiTasks tasks(data_options, load_dataset(data_options.root), seed);
  torch::manual_seed(seed);
  auto backbone = make_backbone(config.section("model"), tasks.input_shape());
  std::vector<std::vector<int64_t>> task_classes;
  for (int t = 0; t < tasks.num_tasks(); ++t) task_classes.push_back(tasks.classes(t));
  if (by_epochs) {
    // Epochs over each task's labeled images, as the supervised benchmarks count them.
    for (int t = 0; t < tasks.num_tasks(); ++t) {
      const auto labeled = static_cast<double>(tasks.indices(t).labeled.size());
      trainer_options.task_iters.push_back(
          std::max<int64_t>(1, static_cast<int64_t>(std::ceil(epochs_per_task * labeled / data_options.batch_size))));
    }
  }
  Classifier model =
      multi_head ? Classifier(backbone, tasks.num_classes(), task_classes) : Classifier(backbone, tasks.num_classes());
  model->to(device);
  const bool save_model = train.get_or<bool>("save_model", true);
  // Active learning ([active]): its oracle is the only holder of the hidden labels.
  std::shared_ptr<ActiveLearner> active;
  if (!config.section("active").child_keys().empty()) {
    const auto active_options = ActiveOptions::from_config(config.section("active"));
    std::unique_ptr<Oracle> oracle;
    if (active_options.oracle == "teacher")
      oracle = TeacherOracle::load(active_options.teacher, tasks, device);
    else
      oracle = std::make_unique<GroundTruthOracle>(tasks.data().train->labels);
    std::vector<int64_t> iters;
    for (int t = 0; t < tasks.num_tasks(); ++t) iters.push_back(trainer_options.iters_of(t));
    active = std::make_shared<ActiveLearner>(active_options, *method, tasks, std::move(oracle), iters);
    hooks.add(active);
  }
  config.ensure_all_used();  // unknown keys are errors, before any file is written

  // The checkpoint to go on from is read before anything is written.
  std::optional<std::pair<fs::path, std::string>> checkpoint;
  if (resuming) checkpoint = newest_readable_checkpoint(run_dir);

  create_run_dir(run_dir);
  // A run directory that cannot take checkpoints fails now, not after an hour.
  const CheckpointDir checkpoints(run_dir, checkpoint_options.keep_last);
  if (checkpoint_options.enabled) checkpoints.prepare();
  // A resumed run keeps its config.toml unless overrides changed it.
  if (!resuming || !args.overrides.empty()) write_file_atomic(run_dir / "config.toml", config.to_toml());
  add_log_file(run_dir / "train.log");
  struct LogFileGuard {
    ~LogFileGuard() { reset_log_files(); }
  } log_file_guard;

  const auto blas = loaded_blas_libraries();
  RunSummary summary{name,
                     method_label,
                     data_options.dataset,
                     backbone_name,
                     to_string(scenario),
                     device.str(),
                     config.fingerprint(),
                     blas.empty() ? "no BLAS library mapped" : join(blas, ", "),
                     blas_threads,
                     threads,
                     seed,
                     0.0,
                     {},
                     {},
                     {}};
  log->info("run directory {}", run_dir.string());
  log->info("sscl {} ({}), LibTorch {}, device {}, {} torch thread(s), {} loader worker(s), BLAS {} ({})",
            sscl_version(), git_commit(), libtorch_version(), summary.device, threads, data_options.workers,
            summary.blas, blas_threads);
  log->info("classifier: {} ({} parameters)", multi_head ? "one head per task" : "one head over all classes",
            count_parameters(*model));
  log->info("training logits: {}",
            mask_train_logits ? "masked to the current task's classes" : "all classes (no task mask)");
  if (by_epochs)
    log->info(
        "iterations per task: {} epoch(s) over the labeled images at batch {} = {} (train.iters_per_task not used)",
        epochs_per_task, data_options.batch_size, join_numbers(trainer_options.task_iters));
  const auto labeled = data_options.split.labels_per_class < 0
                           ? std::string("every image")
                           : std::to_string(data_options.split.labels_per_class) + " per class";
  log->info("{}: {} tasks of {} classes, {} labeled, uratio {}, batch {}", data_options.dataset, tasks.num_tasks(),
            tasks.classes(0).size(), labeled, data_options.uratio, data_options.batch_size);
  if (method->uses_unlabeled()) log->info("strong view: {}", data_options.augment.describe_strong());
  if (active) log->info("{}", describe(*active));

  MethodContext context;
  context.model = model;
  context.device = device;
  context.scenario = scenario;
  context.seed = seed;
  context.mask_train_logits = mask_train_logits;
  context.task_classes = task_classes;
  context.data = &tasks;
  context.batch_size = data_options.batch_size;
  context.run_dir = run_dir;
  context.make_backbone = [&make_backbone, &config, shape = tasks.input_shape(), device] {
    auto fresh = make_backbone(config.section("model"), shape);
    fresh->to(device);
    return fresh;
  };
  method->attach(context);

  Trainer trainer(trainer_options, *method, tasks, hooks, optimizer_options, schedule_options, device);
  if (checkpoint_options.enabled)
    trainer.set_checkpoint_writer(
        [&checkpoints](const std::string& bytes, const CheckpointPosition& position) {
          return checkpoints.write(bytes, position).string();
        },
        checkpoint_options.interval);
  const std::string resume_hint = "tools/train --resume " + run_dir.string();
  // Earlier resumes of this run; a damaged file only loses that history.
  nlohmann::json resumes = nlohmann::json::parse(read_text_or(run_dir / "resumes.json", "null"), nullptr, false);
  if (resumes.is_discarded()) resumes = nullptr;
  try {
    if (checkpoint) {
      log->info("resuming from {}", checkpoint->first.string());
      trainer.resume(checkpoint->second);
      const auto& from = *trainer.resumed_from();
      if (resumes.is_null()) resumes = nlohmann::json::array();
      resumes.push_back({{"checkpoint", checkpoint->first.filename().string()},
                         {"task", from.task},
                         {"next_iter", from.next_iter},
                         {"task_end", from.evaluated},
                         {"global_iter", from.global_iter},
                         {"overrides", args.overrides}});
      write_file_atomic(run_dir / "resumes.json", resumes.dump(2) + "\n");
    } else {
      trainer.run();
    }
  } catch (const Interrupted& e) {
    const std::string hint = std::string(e.what()) + "\nresume with: " + resume_hint;
    log->error("{}", hint);
    throw Interrupted(e.signal(), hint);
  } catch (const std::exception& e) {
    // Into train.log too; no results.json is written.
    const auto kept = CheckpointDir(run_dir, 1).list();
    log->error("run failed: {}", e.what());
    if (!kept.empty())
      log->error("last good checkpoint: {} (resume with: {} [--cfg-options ...])", kept.front().string(), resume_hint);
    throw;
  }
  const RunState& state = trainer.state();
  summary.resumes = resumes;

  summary.method_stats = method->all_stats();
  if (active) summary.active_learning = active_learning_json(*active, tasks);
  if (save_model) {
    // The final weights, e.g. for active.oracle = "teacher" in another run.
    std::ostringstream weights;
    torch::save(model, weights);
    write_file_atomic(run_dir / "model.pt", weights.str());
  }
  summary.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  TrainOutcome outcome{run_dir, results_json(state, summary)};
  write_file_atomic(run_dir / "results.json", outcome.results.dump(2) + "\n");
  get_logger("report")->info("{}", results_table(state, summary));
  log->info("results written to {}", (run_dir / "results.json").string());
  return outcome;
}

}  // namespace sscl
