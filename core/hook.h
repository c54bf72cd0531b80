// Lifecycle hooks. One interface with no-op virtuals for the eleven stages; the
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
// and, when a stop is requested (SIGINT/SIGTERM) between two iterations, on_stop
// instead of the next iteration (the state is whole); the run then ends with
// Interrupted.
// The method's own hooks wrap the user hooks: on before_* the method runs first,
// on after_* it runs last. The run's outer hooks (the checkpoint hook) wrap both,
// so that they see an iteration whole: first on before_*, last on after_* and
// on_stop. User hooks run by priority (lower first), ties in the order they were
// added.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/run_state.h"
#include "core/state.h"

namespace sscl {

// A hook is Stateful: what it holds that a resumed run needs (metrics.jsonl's
// length, the active learner's records) it names in visit_state(), which is
// loaded after before_run.
class Hook : public Stateful {
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
  virtual void on_stop(const RunState&) {}
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
  // A hook that wraps the method's and the user hooks (see the order above).
  void add_outer(std::shared_ptr<Hook> hook);
  // The user hooks, sorted (the ones whose state a checkpoint holds).
  const std::vector<std::shared_ptr<Hook>>& hooks() const { return hooks_; }

  // Calls `stage` on every hook. An exception thrown by a hook is re-thrown as a
  // TrainingError naming the hook, the stage, the task and the iteration.
  // Returns the milliseconds spent in the outer hooks, which the trainer does not
  // count as training time.
  double call(HookStage stage, const RunState& state) const;

 private:
  void call_one(Hook& hook, HookStage stage, const RunState& state) const;

  std::vector<std::shared_ptr<Hook>> hooks_;
  std::vector<Hook*> method_hooks_;
  std::vector<std::shared_ptr<Hook>> outer_hooks_;
};

}  // namespace sscl
