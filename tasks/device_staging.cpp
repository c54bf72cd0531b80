#include "tasks/device_staging.h"

#include <ATen/ATen.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>

namespace sscl {

namespace {

template <typename F>
void for_each_moved(TrainBatch& batch, F&& f) {
  for (at::Tensor* t : {&batch.labeled.images, &batch.labeled.labels, &batch.unlabeled.weak, &batch.unlabeled.strong})
    if (t->defined()) f(*t);
}

}  // namespace

DeviceStager::DeviceStager(c10::Device device) : device_(device) {
  if (device_.is_cpu()) return;
  c10::impl::VirtualGuardImpl impl(device_.type());
  side_stream_ = impl.getStreamFromGlobalPool(device_, /*isHighPriority=*/false);
}

TrainBatch DeviceStager::stage(TrainBatch batch) const {
  if (!side_stream_) return batch;
  {
    c10::StreamGuard on_side(*side_stream_);
    for_each_moved(batch, [&](at::Tensor& t) { t = t.pin_memory().to(device_, /*non_blocking=*/true); });
  }
  side_stream_->synchronize();
  return batch;
}

void DeviceStager::adopt(TrainBatch& batch) const {
  if (!side_stream_) return;
  c10::impl::VirtualGuardImpl impl(device_.type());
  const c10::Stream current = impl.getStream(device_);
  for_each_moved(batch, [&](at::Tensor& t) { t.record_stream(current); });
}

}  // namespace sscl
