#include "core/cuda_support.h"

#ifdef SSCL_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace sscl {

#ifdef SSCL_WITH_CUDA

bool cuda_compiled() { return true; }

bool cuda_bf16_supported(int device_index) { return at::cuda::getDeviceProperties(device_index)->major >= 8; }

int64_t cuda_peak_allocated_bytes(int device_index) {
  namespace alloc = c10::cuda::CUDACachingAllocator;
  const auto stats = alloc::getDeviceStats(device_index);
  return stats.allocated_bytes[static_cast<size_t>(alloc::StatType::AGGREGATE)].peak;
}

void reset_cuda_peak(int device_index) { c10::cuda::CUDACachingAllocator::resetPeakStats(device_index); }

#else

bool cuda_compiled() { return false; }
bool cuda_bf16_supported(int) { return false; }
int64_t cuda_peak_allocated_bytes(int) { return -1; }
void reset_cuda_peak(int) {}

#endif

}  // namespace sscl
