#include "core/precision.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

#include "core/cuda_support.h"
#include "core/error.h"

namespace sscl {

Amp parse_amp(const std::string& name) {
  if (name == "none") return Amp::kNone;
  if (name == "bf16") return Amp::kBF16;
  if (name == "fp16") return Amp::kFP16;
  throw ConfigError("train.amp = \"" + name + "\": expected none, bf16 or fp16");
}

std::string amp_name(Amp amp) {
  switch (amp) {
    case Amp::kBF16: return "bf16";
    case Amp::kFP16: return "fp16";
    default: return "none";
  }
}

void check_amp(Amp amp, c10::Device device) {
  if (amp == Amp::kFP16 && !device.is_cuda())
    throw ConfigError("train.amp = \"fp16\" needs a CUDA device (train.device = \"" + device.str() +
                      "\"): LibTorch's CPU autocast runs in bfloat16 only; use \"bf16\" or \"none\"");
  if (amp == Amp::kBF16 && device.is_cuda() && !cuda_bf16_supported(device.index()))
    throw ConfigError("train.amp = \"bf16\": " + device.str() +
                      " has no bfloat16 (compute capability below 8.0); use \"fp16\" or \"none\"");
}

AutocastScope::AutocastScope(Amp amp, c10::DeviceType device) : active_(amp != Amp::kNone) {
  if (!active_) return;
  cuda_ = device == c10::DeviceType::CUDA;
  const auto dtype = amp == Amp::kBF16 ? at::kBFloat16 : at::kHalf;
  if (cuda_) {
    was_enabled_ = at::autocast::is_enabled();
    was_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    was_enabled_ = at::autocast::is_cpu_enabled();
    was_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // The cast cache holds lower-precision copies of the weights; it is only
  // valid while they do not change, so it goes when the outermost scope ends.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cuda_) {
    at::autocast::set_enabled(was_enabled_);
    at::autocast::set_autocast_gpu_dtype(was_dtype_);
  } else {
    at::autocast::set_cpu_enabled(was_enabled_);
    at::autocast::set_autocast_cpu_dtype(was_dtype_);
  }
}

GradScaler::GradScaler(Options options) : options_(options), scale_(options.init_scale) {
  check<ConfigError>(options_.init_scale > 0 && options_.growth_factor > 1 && options_.backoff_factor > 0 &&
                         options_.backoff_factor < 1 && options_.growth_interval > 0,
                     "GradScaler: needs init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1, "
                     "growth_interval > 0");
}

at::Tensor GradScaler::scale(const at::Tensor& loss) const { return loss * scale_; }

bool GradScaler::unscale(const std::vector<at::Tensor>& params) const {
  at::NoGradGuard no_grad;
  const double inverse = 1.0 / scale_;
  at::Tensor non_finite;  // one flag for every gradient: a single device-to-host read
  for (const auto& p : params) {
    at::Tensor grad = p.grad();
    if (!grad.defined()) continue;
    grad.mul_(inverse);
    const at::Tensor bad = grad.isfinite().logical_not().any();
    non_finite = non_finite.defined() ? non_finite.logical_or(bad) : bad;
  }
  return !non_finite.defined() || !non_finite.item<bool>();
}

void GradScaler::update(bool finite) {
  if (!finite) {
    scale_ *= options_.backoff_factor;
    growth_tracker_ = 0;
    ++skipped_;
    return;
  }
  if (++growth_tracker_ == options_.growth_interval) {
    scale_ *= options_.growth_factor;
    growth_tracker_ = 0;
  }
}

std::vector<double> GradScaler::state() const {
  return {scale_, static_cast<double>(growth_tracker_), static_cast<double>(skipped_)};
}

void GradScaler::load_state(const std::vector<double>& state) {
  check<IoError>(state.size() == 3 && state[0] > 0, "GradScaler: a checkpoint's scaler state must be 3 numbers");
  scale_ = state[0];
  growth_tracker_ = static_cast<int64_t>(state[1]);
  skipped_ = static_cast<int64_t>(state[2]);
}

}  // namespace sscl
