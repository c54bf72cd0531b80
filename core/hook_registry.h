// Registries of hooks. The run builder adds "logger" and "metrics_jsonl" to
// every run and the hooks `log.hooks` names, all built from the [log] section;
// a hook of SectionHookRegistry is built when the config has its table (the
// active learner, from [active]).
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "core/config.h"
#include "core/hook.h"
#include "core/registry.h"

namespace sscl {

class Method;
class TaskData;

struct HookContext {
  std::filesystem::path run_dir;  // may not exist yet: hooks write nothing before before_run
  Method* method = nullptr;       // attached to the run's model
  TaskData* data = nullptr;
  c10::Device device{c10::kCPU};
  std::vector<int64_t> task_iters;  // the iterations of each task
  // False on the ranks but 0 of a distributed run: hooks write no files there.
  bool main_process = true;
};

// Factory: the [log] section and the run's context.
SSCL_DECLARE_REGISTRY(HookRegistry, std::function<std::shared_ptr<Hook>(const ConfigSection&, const HookContext&)>);
// Factory: the hook's own table, named as the entry ([active] for "active").
SSCL_DECLARE_REGISTRY(SectionHookRegistry,
                      std::function<std::shared_ptr<Hook>(const ConfigSection&, const HookContext&)>);

// log.interval, shared by the logger and metrics_jsonl.
struct LogIntervalOptions {
  int64_t interval = 50;
  static void declare(OptionSpec<LogIntervalOptions>& o);
};

}  // namespace sscl
