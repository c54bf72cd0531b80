// Checkpointing as a hook (mmengine's CheckpointHook): an outer hook, so that it
// sees each iteration whole (core/hook.h). It writes
//   - at the end of every task, after its evaluation (after_val);
//   - every checkpoint.interval iterations (global count), between two
//     iterations of a task: at the start of the next one, before any other
//     hook's before_epoch or before_iter;
//   - when a stop is requested (on_stop).
// The bytes come from `snapshot` (Trainer::checkpoint_bytes) and go to `writer`:
// RUN_DIR/checkpoints (core/checkpoint.h), or memory in tests.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "core/checkpoint.h"
#include "core/hook.h"

namespace sscl {

class CheckpointHook : public Hook {
 public:
  using Snapshot = std::function<std::string(const CheckpointPosition&)>;
  // Stores the bytes; returns where they went, for the log and messages.
  using Writer = std::function<std::string(const std::string& bytes, const CheckpointPosition&)>;

  CheckpointHook(CheckpointOptions options, Writer writer, Snapshot snapshot);
  // RUN_DIR/checkpoints, written atomically, the newest keep_last kept.
  static Writer to_dir(const std::filesystem::path& run_dir, int keep_last);
  // A null writer writes nothing and takes no snapshot (the ranks but 0 of a
  // distributed run, whose state is rank 0's).

  std::string hook_name() const override { return "checkpoint"; }
  void before_epoch(const RunState& s) override;
  void before_iter(const RunState& s) override;
  void after_val(const RunState& s) override;
  void on_stop(const RunState& s) override;

  // A run resumed from `position` does not write it again.
  void resumed_from(const CheckpointPosition& position) { resumed_from_ = position; }
  // The file written last; empty before the first.
  const std::string& last_written() const { return last_written_; }

 private:
  void at_iteration_start(const RunState& s);
  void write(const CheckpointPosition& position);

  CheckpointOptions options_;
  Writer writer_;
  Snapshot snapshot_;
  std::optional<CheckpointPosition> resumed_from_;
  std::string last_written_;
};

}  // namespace sscl
