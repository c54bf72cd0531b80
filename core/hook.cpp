#include "core/hook.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "core/error.h"

namespace sscl {

namespace {
struct StageInfo {
  HookStage stage;
  const char* name;
};
constexpr StageInfo kStages[] = {
    {&Hook::before_run, "before_run"},   {&Hook::after_run, "after_run"},       {&Hook::before_task, "before_task"},
    {&Hook::after_task, "after_task"},   {&Hook::before_epoch, "before_epoch"}, {&Hook::after_epoch, "after_epoch"},
    {&Hook::before_iter, "before_iter"}, {&Hook::after_iter, "after_iter"},     {&Hook::before_val, "before_val"},
    {&Hook::after_val, "after_val"},     {&Hook::on_stop, "on_stop"},
};
}  // namespace

std::string stage_name(HookStage stage) {
  for (const auto& info : kStages)
    if (info.stage == stage) return info.name;
  return "unknown_stage";
}

bool is_before_stage(HookStage stage) { return stage_name(stage).rfind("before_", 0) == 0; }

void HookDispatcher::add(std::shared_ptr<Hook> hook) {
  check<Error>(hook != nullptr, "HookDispatcher::add: null hook");
  check<Error>(hook->priority() >= Hook::kHighest && hook->priority() <= Hook::kLowest,
               "hook '" + hook->hook_name() + "': priority must be in [0, 100]");
  // Insert after every hook of the same or higher priority: ties keep insertion order.
  auto pos = std::upper_bound(hooks_.begin(), hooks_.end(), hook->priority(),
                              [](int p, const std::shared_ptr<Hook>& h) { return p < h->priority(); });
  hooks_.insert(pos, std::move(hook));
}

void HookDispatcher::add_outer(std::shared_ptr<Hook> hook) {
  check<Error>(hook != nullptr, "HookDispatcher::add_outer: null hook");
  outer_hooks_.push_back(std::move(hook));
}

double HookDispatcher::call(HookStage stage, const RunState& state) const {
  const bool before = is_before_stage(stage);
  const auto outer = [&](auto first, auto last) {
    if (first == last) return 0.0;
    const auto from = std::chrono::steady_clock::now();
    for (auto it = first; it != last; ++it) call_one(**it, stage, state);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - from).count();
  };
  double outer_ms = 0;
  if (before) {
    outer_ms += outer(outer_hooks_.begin(), outer_hooks_.end());
    for (Hook* hook : method_hooks_) call_one(*hook, stage, state);
  }
  for (const auto& hook : hooks_) call_one(*hook, stage, state);
  if (!before) {
    for (auto it = method_hooks_.rbegin(); it != method_hooks_.rend(); ++it) call_one(**it, stage, state);
    outer_ms += outer(outer_hooks_.rbegin(), outer_hooks_.rend());
  }
  return outer_ms;
}

void HookDispatcher::call_one(Hook& hook, HookStage stage, const RunState& state) const {
  try {
    (hook.*stage)(state);
  } catch (const TrainingError&) {
    throw;  // already carries its context
  } catch (const Interrupted&) {
    throw;
  } catch (const std::exception& e) {
    throw TrainingError("hook '" + hook.hook_name() + "' " + stage_name(stage) + " (task " +
                        std::to_string(state.task) + ", iteration " + std::to_string(state.iter) + "): " + e.what());
  }
}

}  // namespace sscl

#include "core/hook_registry.h"

namespace sscl {
SSCL_DEFINE_REGISTRY(HookRegistry, "hook", "log")
SSCL_DEFINE_REGISTRY(SectionHookRegistry, "hook of its own table", "<name>")

void LogIntervalOptions::declare(OptionSpec<LogIntervalOptions>& o) {
  o.key("interval", &LogIntervalOptions::interval, "iterations between progress lines and metrics.jsonl rows").above(0);
}
}  // namespace sscl
