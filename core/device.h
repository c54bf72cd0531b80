#pragma once

#include <c10/core/Device.h>

#include <string>

namespace sscl {

// "auto" (CUDA when this LibTorch build sees a GPU, else CPU), "cpu", "cuda",
// "cuda:N". Throws ConfigError for anything else or a CUDA device that is absent.
c10::Device resolve_device(const std::string& spec);

// Sets torch's intra-op thread count; 0 means every core. Returns the count set.
int set_torch_threads(int threads);

}  // namespace sscl
