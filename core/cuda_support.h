// The few questions only a CUDA LibTorch can answer. In a CPU build (no
// SSCL_WITH_CUDA) no CUDA device ever resolves (core/device.h), so these are
// never asked about one; they answer "unsupported" / -1 there.
#pragma once

#include <cstdint>

namespace sscl {

// Whether this build links LibTorch's CUDA libraries.
bool cuda_compiled();
// Compute capability 8.0 or newer, as torch.cuda.is_bf16_supported() asks.
bool cuda_bf16_supported(int device_index);
// The caching allocator's peak of allocated bytes on the device since the last
// reset (torch.cuda.max_memory_allocated); -1 in a CPU build.
int64_t cuda_peak_allocated_bytes(int device_index);
void reset_cuda_peak(int device_index);

}  // namespace sscl
