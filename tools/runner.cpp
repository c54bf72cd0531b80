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
#include "core/cuda_support.h"
#include "core/device.h"
#include "core/distributed.h"
#include "core/environment.h"
#include "core/error.h"
#include "core/logging.h"
#include "core/nn/pretrained.h"
#include "core/plugins.h"
#include "core/run_builder.h"
#include "core/text.h"
#include "tools/active_summary.h"
#include "tools/results.h"

namespace sscl {

namespace fs = std::filesystem;

std::string run_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  localtime_r(&t, &tm);
  std::ostringstream out;
  out << std::put_time(&tm, "%Y%m%d_%H%M%S");
  return out.str();
}

namespace {

std::string read_text_or(const fs::path& file, const std::string& fallback) {
  std::ifstream in(file);
  if (!in) return fallback;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

fs::path choose_run_dir(const TrainArgs& args, const std::string& name) {
  fs::path dir = args.work_dir ? *args.work_dir : args.work_dirs_root / name / run_timestamp();
  if (fs::exists(dir / "results.json"))
    throw IoError(dir.string() + ": already holds a finished run (results.json); choose another --work-dir");
  return dir;
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

Config read_run_config(const fs::path& file, const std::vector<std::string>& overrides,
                       const std::vector<fs::path>& plugins, const std::string& default_name) {
  Config config = Config::load(file);
  config.apply_overrides(overrides);
  for (const auto& plugin : load_plugins(plugin_paths(config, plugins)))
    get_logger("sscl")->info("plugin {}: {} name(s) registered", plugin.path, plugin.registered.size());
  if (!config.has("name")) config.apply_override("name=\"" + default_name + "\"");
  return config;
}

void create_run_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir.string() + ": cannot create run directory: " + ec.message());
}

TrainOutcome run_training(const TrainArgs& args) {
  const auto wall_start = std::chrono::steady_clock::now();
  auto log = get_logger("sscl");
  // A launcher's ranks (core/distributed.h): the others log warnings and errors only.
  const DistEnv env = read_dist_env();
  if (env.rank != 0) console_warnings_only();
  const std::optional<fs::path> resuming = resume_dir(args);
  if (args.resume && *args.resume == "auto" && !resuming)
    log->info("--resume auto: no unfinished run with a checkpoint; starting a new one");
  Config config = read_run_config(resuming ? *resuming / "config.toml" : args.config, args.overrides, args.plugins,
                                  args.config.stem().string());
  const std::string name = config.get<std::string>("name");
  std::shared_ptr<World> world = single_process_world();
  if (env.world_size > 1) {
    const auto train = config.section("train");
    world =
        make_world(env, read_options<DistOptions>(train), resolve_device(train.get_or<std::string>("device", "auto")));
  }
  const bool main = world->is_main();
  // Rank 0 names the run directory (a timestamp), every rank uses it.
  const fs::path run_dir =
      world->broadcast_string(main ? (resuming ? *resuming : choose_run_dir(args, name)).string() : std::string());

  // Everything is built and every key read before anything is written.
  const std::unique_ptr<Run> built = RunBuilder(config, run_dir, world).finish();
  Run& run = *built;

  // The checkpoint to go on from is read before anything is written.
  std::optional<std::pair<fs::path, std::string>> checkpoint;
  if (resuming) checkpoint = newest_readable_checkpoint(run_dir);

  if (main) {
    create_run_dir(run_dir);
    // A run directory that cannot take checkpoints fails now, not after an hour.
    if (run.checkpoints) CheckpointDir(run_dir, 1).prepare();
    // A resumed run keeps its config.toml unless overrides changed it.
    if (!resuming || !args.overrides.empty()) write_file_atomic(run_dir / "config.toml", config.to_toml());
  }
  world->barrier();  // the directory exists for every rank
  if (main)
    add_log_file(run_dir / "train.log");
  else
    add_log_file(run_dir / ("train.rank" + std::to_string(world->rank()) + ".log"), /*warnings_only=*/true);
  struct LogFileGuard {
    ~LogFileGuard() { reset_log_files(); }
  } log_file_guard;

  // The names results.json reports, from the resolved config (defaults included).
  const Config resolved = Config::from_string(config.to_toml(), (run_dir / "config.toml").string());
  const auto blas = loaded_blas_libraries();
  RunSummary summary{name,
                     run.method_label,
                     resolved.get_or<std::string>("data.dataset", "?"),
                     resolved.get<std::string>("model.backbone"),
                     to_string(run.scenario),
                     run.device.str(),
                     config.fingerprint(),
                     blas.empty() ? "no BLAS library mapped" : join(blas, ", "),
                     run.blas_threads,
                     run.threads,
                     static_cast<uint64_t>(run.train.seed),
                     0.0,
                     {},   // method_stats
                     {},   // active_learning
                     {},   // resumes
                     {},   // split
                     {},   // precision
                     {},   // pretrained
                     {},   // fine_tune
                     -1};  // peak_device_bytes
  summary.split = split_json(*run.data);
  summary.world_size = world->size();
  summary.backend = world->backend();
  if (run.pretrained) summary.pretrained = to_json(*run.pretrained);
  summary.fine_tune = fine_tuning_json(run);
  summary.precision = {{"amp", amp_name(run.amp)},
                       {"eval_amp", run.amp != Amp::kNone && resolved.get<bool>("eval.amp")},
                       {"channels_last", run.model->channels_last()}};
  log->info("run directory {}", run_dir.string());
  for (const auto& line : describe_run(run)) log->info("{}", line);

  Trainer& trainer = *run.trainer;
  const std::string resume_hint =
      "tools/train --resume " + run_dir.string() +
      (world->distributed() ? " --nproc " + std::to_string(world->size()) + " (or any other number of ranks)" : "");
  // Earlier resumes of this run; a damaged file only loses that history.
  nlohmann::json resumes = nlohmann::json::parse(read_text_or(run_dir / "resumes.json", "null"), nullptr, false);
  if (resumes.is_discarded()) resumes = nullptr;
  try {
    if (checkpoint) {
      log->info("resuming from {}", checkpoint->first.string());
      const CheckpointPosition from = Trainer::position_of(checkpoint->second);
      if (run.checkpoints) run.checkpoints->resumed_from(from);
      trainer.resume(checkpoint->second);
      if (resumes.is_null()) resumes = nlohmann::json::array();
      resumes.push_back({{"checkpoint", checkpoint->first.filename().string()},
                         {"task", from.task},
                         {"next_iter", from.next_iter},
                         {"task_end", from.evaluated},
                         {"global_iter", from.global_iter},
                         {"world_size", world->size()},
                         {"overrides", args.overrides}});
      if (main) write_file_atomic(run_dir / "resumes.json", resumes.dump(2) + "\n");
    } else {
      trainer.run();
    }
  } catch (const Interrupted& e) {
    const std::string saved = !run.checkpoints ? "; checkpoints are off, nothing was saved"
                              : run.checkpoints->last_written().empty()
                                  ? "; no checkpoint was written"
                                  : "; checkpoint " + run.checkpoints->last_written();
    const std::string hint = std::string(e.what()) + saved + "\nresume with: " + resume_hint;
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
  // Every rank holds the same model and state: rank 0 writes them.
  if (!main) return TrainOutcome{run_dir, nullptr};

  summary.method_stats = run.method->all_stats();
  for (const auto& hook : run.hooks.hooks())
    if (const auto* active = dynamic_cast<const ActiveLearner*>(hook.get()))
      summary.active_learning = active_learning_json(*active, *run.data);
  if (run.train.save_model) {
    // The final weights, e.g. for active.oracle = "teacher" in another run.
    std::ostringstream weights;
    torch::save(run.model, weights);
    write_file_atomic(run_dir / "model.pt", weights.str());
  }
  if (run.device.is_cuda()) summary.peak_device_bytes = cuda_peak_allocated_bytes(run.device.index());
  summary.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  TrainOutcome outcome{run_dir, results_json(state, summary)};
  write_file_atomic(run_dir / "results.json", outcome.results.dump(2) + "\n");
  get_logger("report")->info("{}", results_table(state, summary));
  log->info("results written to {}", (run_dir / "results.json").string());
  return outcome;
}

}  // namespace sscl
