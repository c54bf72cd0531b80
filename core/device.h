#pragma once

#include <c10/core/Device.h>

#include <string>

namespace sscl {

// "auto" (CUDA when this LibTorch build sees a GPU, else CPU), "cpu", "cuda",
// "cuda:N". Throws ConfigError for anything else or a CUDA device that is absent.
c10::Device resolve_device(const std::string& spec);

// Sets torch's intra-op thread count; 0 means every core. Returns the count set.
int set_torch_threads(int threads);

// Sets the thread count of an OpenBLAS mapped into the process (train.blas_threads;
// 0 leaves it alone). OpenBLAS's own pool spinning beside torch's OpenMP pool cost
// about 20% of an iteration and most of the system time on 2 cores, so the
// default is 1. Returns a description for the log and results.json, e.g.
// "openblas: 1 thread(s)", or "unchanged (no OpenBLAS symbols)" for other BLAS.
std::string set_blas_threads(int threads);

}  // namespace sscl
