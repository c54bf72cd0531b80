// GPU runs: the loader thread copies each batch it built into page-locked
// (pinned) host memory and from there to the device on a side stream, so that
// the copy overlaps the trainer's compute on its own stream. The loader waits for
// its copy before the batch enters the ring (only the loader thread blocks); the
// trainer then records its stream on the batch's tensors, so that the caching
// allocator does not hand their memory to the next copy while kernels still read
// it. On a CPU both are no-ops.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/Stream.h>

#include <optional>

#include "core/batch.h"

namespace sscl {

class DeviceStager {
 public:
  explicit DeviceStager(c10::Device device);

  // Loader thread: the batch's tensors on the device (indices stay on the host).
  TrainBatch stage(TrainBatch batch) const;
  // Trainer thread: the batch is used on this thread's current stream from now on.
  void adopt(TrainBatch& batch) const;

  bool active() const { return side_stream_.has_value(); }

 private:
  c10::Device device_;
  std::optional<c10::Stream> side_stream_;  // none on a CPU
};

}  // namespace sscl
