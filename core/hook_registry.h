#pragma once

#include <filesystem>
#include <functional>
#include <memory>

#include "core/config.h"
#include "core/hook.h"
#include "core/registry.h"

namespace sscl {

struct HookContext {
  std::filesystem::path run_dir;  // may not exist yet: hooks write nothing before before_run
};

// Factory: the `log` config section and the run's context. The runner adds
// "logger" and "metrics_jsonl" to every run; `log.hooks` names extra ones.
SSCL_DECLARE_REGISTRY(HookRegistry, std::function<std::shared_ptr<Hook>(const ConfigSection&, const HookContext&)>);

}  // namespace sscl
