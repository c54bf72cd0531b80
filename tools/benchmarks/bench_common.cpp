#include "tools/benchmarks/bench_common.h"

#include <ATen/Parallel.h>

#include <cstdio>
#include <thread>

#include "core/environment.h"

namespace sscl::bench {

void print_environment(const std::string& blas_threads) {
  std::string blas;
  for (const auto& lib : loaded_blas_libraries()) blas += (blas.empty() ? "" : ", ") + lib;
  std::printf("sscl %s (%s), LibTorch %s\n", sscl_version().c_str(), git_commit().c_str(), libtorch_version().c_str());
  std::printf("cpu: %s, %u hardware threads\n", cpu_model().c_str(), std::thread::hardware_concurrency());
  std::printf("BLAS: %s (%s); torch intra-op threads: %d\n", blas.empty() ? "none mapped" : blas.c_str(),
              blas_threads.c_str(), at::get_num_threads());
}

}  // namespace sscl::bench
