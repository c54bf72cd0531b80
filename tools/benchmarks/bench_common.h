// What every benchmark prints first, so that figures can be compared honestly:
// the build, the BLAS actually mapped into the process and the thread counts.
#pragma once

#include <chrono>
#include <string>

namespace sscl::bench {

// Prints sscl version and commit, LibTorch version, CPU, cores, BLAS and its
// threads, torch threads. Call after the thread counts are set.
void print_environment(const std::string& blas_threads);

// Seconds since `start`.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace sscl::bench
