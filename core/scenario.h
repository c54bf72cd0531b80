#pragma once

#include <string>

namespace sscl {

// task-IL: the task id is known at test time, logits are masked to its classes.
// class-IL: it is not; prediction is among every class seen so far.
enum class Scenario { kTaskIL, kClassIL };

std::string to_string(Scenario scenario);
// Parses "task-il" / "class-il"; throws ConfigError otherwise.
Scenario parse_scenario(const std::string& name);

}  // namespace sscl
