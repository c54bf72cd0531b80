#include "core/checkpoint_hook.h"

#include <chrono>

#include "core/logging.h"

namespace sscl {

CheckpointHook::CheckpointHook(CheckpointOptions options, Writer writer, Snapshot snapshot)
    : options_(options), writer_(std::move(writer)), snapshot_(std::move(snapshot)) {}

CheckpointHook::Writer CheckpointHook::to_dir(const std::filesystem::path& run_dir, int keep_last) {
  return [dir = CheckpointDir(run_dir, keep_last)](const std::string& bytes, const CheckpointPosition& position) {
    return dir.write(bytes, position).string();
  };
}

void CheckpointHook::before_epoch(const RunState& s) { at_iteration_start(s); }

void CheckpointHook::before_iter(const RunState& s) {
  // An epoch's first iteration started in before_epoch.
  if (s.iter % s.iters_per_virtual_epoch != 0) at_iteration_start(s);
}

void CheckpointHook::after_val(const RunState& s) { write({s.task, s.iters_per_task, true, s.global_iter}); }

void CheckpointHook::on_stop(const RunState& s) { write({s.task, s.iter, false, s.global_iter}); }

void CheckpointHook::at_iteration_start(const RunState& s) {
  // Not at a task's first iteration: the previous task's end wrote one.
  if (options_.interval > 0 && s.iter > 0 && s.global_iter % options_.interval == 0)
    write({s.task, s.iter, false, s.global_iter});
}

void CheckpointHook::write(const CheckpointPosition& position) {
  if (resumed_from_ && resumed_from_->global_iter == position.global_iter &&
      resumed_from_->evaluated == position.evaluated) {
    resumed_from_.reset();
    return;
  }
  if (!writer_) return;  // a distributed run's other ranks: rank 0 writes
  const auto start = std::chrono::steady_clock::now();
  const std::string bytes = snapshot_(position);
  last_written_ = writer_(bytes, position);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  get_logger("checkpoint")
      ->info("task {} iteration {}{}: {} ({:.1f} MB, {:.0f} ms)", position.task, position.next_iter,
             position.evaluated ? " (task end)" : "", last_written_, bytes.size() / 1e6, ms);
}

}  // namespace sscl
