#include "core/scenario.h"

#include "core/error.h"

namespace sscl {

std::string to_string(Scenario scenario) {
  switch (scenario) {
    case Scenario::kTaskIL: return "task-il";
    case Scenario::kClassIL: return "class-il";
    case Scenario::kDomainIL: return "domain-il";
  }
  return "?";
}

Scenario parse_scenario(const std::string& name) {
  if (name == "task-il") return Scenario::kTaskIL;
  if (name == "class-il") return Scenario::kClassIL;
  if (name == "domain-il") return Scenario::kDomainIL;
  throw ConfigError("unknown scenario '" + name + "'; known: task-il, class-il, domain-il");
}

}  // namespace sscl
