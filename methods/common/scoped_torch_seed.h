// Seeds torch's default CPU generator, which layer initialisation draws from, for
// a scope and puts its previous state back after: a network built inside (PNN's
// column t, GDumb's fresh model at task t) is the same whatever ran before, and
// is rebuilt identically on resume. Backbones are built on the CPU.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <mutex>

namespace sscl {

class ScopedTorchSeed {
 public:
  explicit ScopedTorchSeed(uint64_t seed) : generator_(at::detail::getDefaultCPUGenerator()) {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    saved_ = generator_.get_state();
    generator_.set_current_seed(seed);
  }
  ~ScopedTorchSeed() {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    generator_.set_state(saved_);
  }
  ScopedTorchSeed(const ScopedTorchSeed&) = delete;
  ScopedTorchSeed& operator=(const ScopedTorchSeed&) = delete;

 private:
  at::Generator generator_;
  at::Tensor saved_;
};

}  // namespace sscl
