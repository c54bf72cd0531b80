#include "core/environment.h"

#include <sys/resource.h>
#include <torch/version.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "git_commit.h"  // generated at build time

namespace sscl {

std::string sscl_version() { return SSCL_VERSION; }
std::string git_commit() { return SSCL_GIT_COMMIT; }
std::string libtorch_version() { return TORCH_VERSION; }

std::vector<std::string> loaded_blas_libraries() {
  std::ifstream maps("/proc/self/maps");
  std::set<std::string> found;
  std::string line;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const std::string file = std::filesystem::path(path).filename().string();
    if (file.find("blas") == std::string::npos && file.find("mkl_core") == std::string::npos) continue;
    std::error_code ec;
    const auto resolved = std::filesystem::canonical(path, ec);
    found.insert(ec ? path : resolved.string());
  }
  return {found.begin(), found.end()};
}

std::string cpu_model() {
  std::ifstream info("/proc/cpuinfo");
  std::string line;
  while (std::getline(info, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
}

}  // namespace sscl
