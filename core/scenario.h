#pragma once

#include <string>

namespace sscl {

// task-IL: the task id is known at test time, logits are masked to its classes.
// class-IL: it is not; prediction is among every class seen so far.
// domain-IL: every task has every class and the inputs change (rotations, a new
//   camera); one shared head, prediction among all classes, no task id. Task-IL
//   and class-IL accuracy coincide there (the mask and the seen set are all classes).
enum class Scenario { kTaskIL, kClassIL, kDomainIL };

std::string to_string(Scenario scenario);
// Parses "task-il" / "class-il" / "domain-il"; throws ConfigError otherwise.
Scenario parse_scenario(const std::string& name);

}  // namespace sscl
