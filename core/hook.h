// Lifecycle hooks. One interface with no-op virtuals for the ten stages; the
// trainer dispatches through member pointers (HookStage), so a hook with a wrong
// signature fails to compile instead of silently never being called.
//
// Order of one run (E = train.iters_per_virtual_epoch, I = train.iters_per_task):
//   before_run
//   for each task:
//     before_task
//     for each iteration i in [0, I):
//       before_epoch            (when i % E == 0)
//       before_iter, <step>, after_iter
//       after_epoch             (when (i + 1) % E == 0 or i + 1 == I)
//     after_task
//     before_val, <evaluation>, after_val
//   after_run
// The method's own hooks wrap the user hooks: on before_* the method runs first,
// on after_* it runs last. User hooks run by priority (lower first), ties in the
// order they were added.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/run_state.h"

namespace torch::serialize {
class OutputArchive;
class InputArchive;
}  // namespace torch::serialize

namespace sscl {

class Hook {
 public:
  // mmengine's scale: 0 highest .. 100 lowest.
  static constexpr int kHighest = 0;
  static constexpr int kNormal = 50;
  static constexpr int kLowest = 100;

  virtual ~Hook() = default;
  virtual std::string hook_name() const = 0;
  virtual int priority() const { return kNormal; }

  virtual void before_run(const RunState&) {}
  virtual void after_run(const RunState&) {}
  virtual void before_task(const RunState&) {}
  virtual void after_task(const RunState&) {}
  virtual void before_epoch(const RunState&) {}
  virtual void after_epoch(const RunState&) {}
  virtual void before_iter(const RunState&) {}
  virtual void after_iter(const RunState&) {}
  virtual void before_val(const RunState&) {}
  virtual void after_val(const RunState&) {}

  // What the hook holds that a resumed run needs (checkpoints). load_state is
  // called after before_run, with what save_state wrote.
  virtual void save_state(torch::serialize::OutputArchive&) const {}
  virtual void load_state(torch::serialize::InputArchive&) {}
};

using HookStage = void (Hook::*)(const RunState&);

// The name of a stage, for error context and tests ("before_task", ...).
std::string stage_name(HookStage stage);
bool is_before_stage(HookStage stage);

// User hooks sorted by priority, with the method wrapped around them.
class HookDispatcher {
 public:
  void add(std::shared_ptr<Hook> hook);
  // The method's hooks (the method and its composed parts), run first on before_*
  // stages in this order and last on after_* stages in reverse order.
  void set_method_hooks(std::vector<Hook*> method_hooks) { method_hooks_ = std::move(method_hooks); }
  const std::vector<std::shared_ptr<Hook>>& hooks() const { return hooks_; }

  // Calls `stage` on every hook. An exception thrown by a hook is re-thrown as a
  // TrainingError naming the hook, the stage, the task and the iteration.
  void call(HookStage stage, const RunState& state) const;

 private:
  void call_one(Hook& hook, HookStage stage, const RunState& state) const;

  std::vector<std::shared_ptr<Hook>> hooks_;
  std::vector<Hook*> method_hooks_;
};

}  // namespace sscl
