#pragma once

#include <c10/core/Device.h>

#include <string>

namespace sscl {

// "auto" (CUDA when this LibTorch build sees a GPU, else CPU), "cpu", "cuda",
// "cuda:N". Throws ConfigError for anything else or a CUDA device that is absent.
c10::Device resolve_device(const std::string& spec);

// The thread count train.threads = 0 means, as LibTorch and PyTorch read it:
// OMP_NUM_THREADS when set (`omp_num_threads`, its value or null; the first
// number of a nested list), else the `cores` shared by the `local_ranks`
// processes of this machine. tools/test sets OMP_NUM_THREADS=1: its test
// processes run one per core, and two 2-thread OpenMP pools on 2 cores spent
// 80% of their time spinning in libgomp (perf; a methods_tests shard took 49 s
// beside another, 5 s alone). ConfigError naming the variable when it is not a
// positive integer.
int default_threads(const char* omp_num_threads, int cores, int local_ranks);

// Sets torch's intra-op thread count; 0 means default_threads() of this
// process's environment. Returns the count set.
int set_torch_threads(int threads, int local_ranks = 1);

// Sets the thread count of an OpenBLAS mapped into the process (train.blas_threads;
// 0 leaves it alone). OpenBLAS's own pool spinning beside torch's OpenMP pool cost
// about 20% of an iteration and most of the system time on 2 cores, so the
// default is 1. Returns a description for the log and results.json, e.g.
// "openblas: 1 thread(s)", or "unchanged (no OpenBLAS symbols)" for other BLAS.
std::string set_blas_threads(int threads);

}  // namespace sscl
