// Small text helpers shared by the logs, errors and tables.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sscl {

// "a, b, c" for join({"a", "b", "c"}, ", "); empty for no parts.
inline std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

}  // namespace sscl
