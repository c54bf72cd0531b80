// Checkpoints: where they go, when they are written and what of the run's plain
// state they carry. The trainer assembles the archive (model, optimizer, method,
// hooks, task data, RNG states, position; Trainer::checkpoint_bytes) and the
// CheckpointHook (core/checkpoint_hook.h) decides when; this file keeps the
// rest: the folder of numbered files written atomically with the last K kept,
// RunState <-> JSON, and the global generators' states.
//
// Our own randomness (core/random.h) is a pure function of (seed, task, iteration,
// ...), so it needs no state; torch's global generators (dropout, a fresh
// backbone's initialisation) do, and are saved.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/options.h"
#include "core/run_state.h"

namespace torch::serialize {
class OutputArchive;
class InputArchive;
}  // namespace torch::serialize

namespace sscl {

struct CheckpointOptions {
  bool enabled = true;
  int64_t interval = 200;  // also every `interval` iterations (global count); 0: task ends only
  int keep_last = 2;       // checkpoint files kept; older ones are deleted once a newer one is on disk

  static void declare(OptionSpec<CheckpointOptions>& o);
};

// The checkpoint format this build writes and reads (a checkpoint names it).
// 2: state fields by name with a manifest (core/state.h).
constexpr int64_t kCheckpointFormat = 2;

// Where the trainer stands when a checkpoint is taken. `next_iter` is the first
// iteration of `task` still to run; `evaluated` says the task is finished and
// evaluated (the run goes on with task + 1).
struct CheckpointPosition {
  int task = 0;
  int64_t next_iter = 0;
  bool evaluated = false;
  int64_t global_iter = 0;
};

// RUN_DIR/checkpoints/ckpt_<global iteration>[_task_end].pt
class CheckpointDir {
 public:
  CheckpointDir(std::filesystem::path run_dir, int keep_last);

  const std::filesystem::path& path() const { return dir_; }
  // Creates the folder and proves it writable with a probe file; IoError naming it.
  void prepare() const;
  // Writes atomically (a failed write leaves the older files as they were), then
  // deletes all but the newest keep_last. Returns the new file.
  std::filesystem::path write(const std::string& bytes, const CheckpointPosition& position) const;
  // Checkpoint files, newest first: by global iteration, and at the same one a
  // mid-task file (a stop at the next task's start) before the task-end file.
  std::vector<std::filesystem::path> list() const;

 private:
  std::filesystem::path dir_;
  int keep_last_;
};

// RunState as JSON text and back (NaN accuracies as null).
std::string run_state_to_json(const RunState& state);
RunState run_state_from_json(const std::string& text);
std::string position_to_json(const CheckpointPosition& position);
CheckpointPosition position_from_json(const std::string& text);

// torch's default CPU generator and, where CUDA is available, every CUDA device's.
void save_generator_states(torch::serialize::OutputArchive& archive);
void load_generator_states(torch::serialize::InputArchive& archive);

}  // namespace sscl
