// Assembles a run from its config in named steps (mmengine's Runner.build_*):
//
//   RunBuilder builder(config, run_dir);  // reads [train]; sets the threads
//   builder.build_data();                 // data.sequence -> TaskData
//   builder.build_model();                // model.backbone -> Classifier (seeded)
//   builder.build_method();               // method.name (+ method.semi), attached
//   builder.build_hooks();                // logger, metrics_jsonl, log.hooks, [active]
//   builder.build_trainer();              // optimizer, schedule, evaluator, checkpoints
//   std::unique_ptr<Run> run = builder.finish();  // every key read: unknown ones are errors
//
// Each step reads only its own sections through the registries, so core names
// no method, backbone or dataset. Tests give built objects instead (set_data).
// Nothing is written to disk: the tools create the run directory after finish().
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/checkpoint_hook.h"
#include "core/config.h"
#include "core/distributed.h"
#include "core/hook.h"
#include "core/method.h"
#include "core/nn/classifier.h"
#include "core/precision.h"
#include "core/scenario.h"
#include "core/task_data.h"
#include "core/trainer.h"

namespace sscl {

struct PretrainedReport;

// [train]
struct TrainOptions {
  int64_t seed = 0;
  std::string device = "auto";
  int threads = 0;       // torch intra-op threads; 0: OMP_NUM_THREADS, else every core
  int blas_threads = 1;  // OpenBLAS threads beside torch's pool; 0: its default
  int64_t iters_per_task = 1000;
  int64_t iters_per_virtual_epoch = 100;
  std::optional<double> epochs_per_task;
  bool save_model = true;
  std::string amp = "none";     // none | bf16 | fp16 (core/precision.h)
  bool cudnn_benchmark = true;  // cuDNN picks the fastest kernels per shape (not deterministic)
  DistOptions dist;             // backend, dist_timeout_s, dist_init, dist_bucket_mb
  static void declare(OptionSpec<TrainOptions>& o);
};

// The keys of [data], [model] and [method] that choose components.
struct DataSelection {
  std::string sequence = "split_semi";
  std::string scenario = "task-il";
  static void declare(OptionSpec<DataSelection>& o);
};
struct ModelSelection {
  std::string backbone = "small_cnn";
  bool multi_head = false;
  bool channels_last = false;
  bool sync_bn = false;
  std::optional<std::string> pretrained;  // core/nn/pretrained.h
  std::string pretrained_prefix;
  bool pretrained_strict = false;
  std::string freeze = "none";  // core/nn/classifier.h
  int64_t frozen_stages = -1;
  static void declare(OptionSpec<ModelSelection>& o);
};
struct MethodSelection {
  std::string name;
  std::optional<std::string> semi;
  std::string train_mask = "auto";
  static void declare(OptionSpec<MethodSelection>& o);
};
struct LogOptions {
  std::vector<std::string> hooks;
  bool tensorboard = false;  // adds the "tensorboard" hook (RUN_DIR/tb)
  static void declare(OptionSpec<LogOptions>& o);
};

// A built run: what the tools train and the tests inspect. Not copied or moved:
// the trainer holds references into it.
struct Run {
  Run() = default;
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;
  TrainOptions train;
  Scenario scenario = Scenario::kTaskIL;
  c10::Device device{c10::kCPU};
  Amp amp = Amp::kNone;
  int threads = 0;
  std::string blas_threads;
  std::shared_ptr<World> world;  // one process unless distributed
  std::unique_ptr<TaskData> data;
  Classifier model{nullptr};
  int synced_batch_norms = 0;                          // model.sync_bn: how many layers
  std::shared_ptr<const PretrainedReport> pretrained;  // model.pretrained: what was loaded; null without
  // The backbone tensors the run started from that a fresh backbone (GDumb's
  // restart, PNN's columns) starts from too: those model.pretrained loaded and
  // those model.freeze or model.frozen_stages froze. Names under the backbone.
  std::map<std::string, at::Tensor> start_backbone;
  LrMults lr_mult;  // optimizer.lr_mult
  bool mask_train_logits = false;
  std::unique_ptr<Method> method;
  HookDispatcher hooks;
  std::shared_ptr<CheckpointHook> checkpoints;  // null when checkpoint.enabled = false
  TrainerOptions trainer_options;
  std::unique_ptr<Trainer> trainer;
  // method.name, with "+<loss>" when method.semi composes one: "der+fixmatch",
  // "fixmatch" (a loss alone).
  std::string method_label;
};

class RunBuilder {
 public:
  // The config must outlive the builder and the run (sections view it).
  // `run_dir` may not exist yet (nothing is written before training); empty in
  // tests that write no files.
  // `world`: the ranks of a distributed run (null: one process); train.threads = 0
  // then divides the cores among this machine's ranks, and a CUDA device without
  // an index is the local rank's GPU.
  explicit RunBuilder(const Config& config, std::filesystem::path run_dir = {}, std::shared_ptr<World> world = nullptr);

  // A task sequence built by the caller instead of from data.sequence.
  RunBuilder& set_data(std::unique_ptr<TaskData> data);
  // Where checkpoints go instead of RUN_DIR/checkpoints (tests keep them in memory).
  RunBuilder& set_checkpoint_writer(CheckpointHook::Writer writer);

  RunBuilder& build_data();
  RunBuilder& build_model();
  RunBuilder& build_method();
  RunBuilder& build_hooks();
  RunBuilder& build_trainer();
  // Every step not taken yet, then the check that every key was read.
  std::unique_ptr<Run> finish();

 private:
  const Config& config_;
  std::filesystem::path run_dir_;
  std::unique_ptr<Run> run_ = std::make_unique<Run>();
  std::optional<CheckpointHook::Writer> checkpoint_writer_;
  bool data_ = false, model_ = false, method_ = false, hooks_ = false, trainer_ = false;
};

// The lines a run's log starts with: versions, device, threads, BLAS, the
// classifier, the training logits, the iterations and the data.
std::vector<std::string> describe_run(const Run& run);

// model.freeze / model.frozen_stages and optimizer.lr_mult as train.log and
// results.json ("fine_tune") give them: the frozen modules and how many
// parameters they hold, and each learning-rate group's multiplier and size.
// Empty lines / null when the run uses neither.
std::vector<std::string> describe_fine_tuning(const Run& run);
nlohmann::json fine_tuning_json(const Run& run);

}  // namespace sscl
