#include "core/method.h"

#include <algorithm>

namespace sscl {

SSCL_DEFINE_REGISTRY(MethodRegistry, "method")

void ensure_supported(const Method& method, Scenario scenario) {
  const auto supported = method.supported_scenarios();
  if (std::find(supported.begin(), supported.end(), scenario) != supported.end()) return;
  std::string names;
  for (auto s : supported) names += (names.empty() ? "" : ", ") + to_string(s);
  throw ConfigError("method '" + method.name() + "' does not support data.scenario = '" + to_string(scenario) +
                    "' (it supports: " + names + ")");
}

}  // namespace sscl
