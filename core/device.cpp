#include "core/device.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <regex>
#include <thread>

#include "core/error.h"

namespace sscl {

c10::Device resolve_device(const std::string& spec) {
  if (spec == "auto") return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (spec == "cpu") return c10::Device(c10::kCPU);
  static const std::regex cuda_re("cuda(:([0-9]+))?");
  std::smatch m;
  if (!std::regex_match(spec, m, cuda_re))
    throw ConfigError("train.device = '" + spec + "': expected auto, cpu, cuda or cuda:N");
  const int index = m[2].matched ? std::stoi(m[2].str()) : 0;
  const int available = static_cast<int>(torch::cuda::device_count());
  if (index >= available)
    throw ConfigError("train.device = '" + spec + "': this LibTorch build sees " + std::to_string(available) +
                      " CUDA device(s)");
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

int default_threads(const char* omp_num_threads, int cores, int local_ranks) {
  if (omp_num_threads != nullptr && *omp_num_threads != '\0') {
    const std::string value(omp_num_threads);
    static const std::regex first_number(" *([0-9]+) *(,.*)?");
    std::smatch m;
    if (!std::regex_match(value, m, first_number) || m[1].length() > 6 || std::stoi(m[1].str()) < 1)
      throw ConfigError("OMP_NUM_THREADS='" + value +
                        "': expected a positive integer (train.threads = 0 takes the thread count from it)");
    return std::stoi(m[1].str());
  }
  return std::max(1, std::max(1, cores) / std::max(1, local_ranks));
}

int set_torch_threads(int threads, int local_ranks) {
  if (threads < 0)
    throw ConfigError("train.threads must be >= 0 (0 = OMP_NUM_THREADS or all cores), got " + std::to_string(threads));
  if (threads == 0)
    threads = default_threads(std::getenv("OMP_NUM_THREADS"), static_cast<int>(std::thread::hardware_concurrency()),
                              local_ranks);
  at::set_num_threads(threads);
  return at::get_num_threads();
}

std::string set_blas_threads(int threads) {
  if (threads < 0)
    throw ConfigError("train.blas_threads must be >= 0 (0 = leave the BLAS default), got " + std::to_string(threads));
  using SetThreads = void (*)(int);
  using GetThreads = int (*)();
  auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (!set || !get) return "unchanged (no OpenBLAS symbols)";
  if (threads > 0) set(threads);
  return "openblas: " + std::to_string(get()) + " thread(s)" + (threads > 0 ? "" : " (its default)");
}

}  // namespace sscl
