#include "core/scenario.h"

#include "core/error.h"

namespace sscl {

std::string to_string(Scenario scenario) { return scenario == Scenario::kTaskIL ? "task-il" : "class-il"; }

Scenario parse_scenario(const std::string& name) {
  if (name == "task-il") return Scenario::kTaskIL;
  if (name == "class-il") return Scenario::kClassIL;
  throw ConfigError("unknown scenario '" + name + "'; known: task-il, class-il");
}

}  // namespace sscl
