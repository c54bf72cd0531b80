// Mixed precision (train.amp): LibTorch's autocast around the forward passes and
// losses, and for float16 a gradient scaler, as torch.autocast and
// torch.cuda.amp.GradScaler do in Python. Autocast is thread-local state of the
// dispatcher: ops on its lists run in the lower precision, the rest in float32.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sscl {

enum class Amp { kNone, kBF16, kFP16 };

// "none" | "bf16" | "fp16" (train.amp); ConfigError naming the key otherwise.
Amp parse_amp(const std::string& name);
std::string amp_name(Amp amp);

// ConfigError naming train.amp when `device` cannot run `amp`: float16 on a CPU
// (LibTorch's CPU autocast runs bfloat16 only), bfloat16 on a GPU older than
// compute capability 8.0.
void check_amp(Amp amp, c10::Device device);

// Autocast on for `device`'s type in `amp`'s precision for the scope's lifetime
// (nothing for Amp::kNone); the previous state comes back when it ends.
class AutocastScope {
 public:
  AutocastScope(Amp amp, c10::DeviceType device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false, cuda_ = false, was_enabled_ = false;
  c10::ScalarType was_dtype_ = c10::ScalarType::Float;
};

// Dynamic loss scaling for float16 (the float16 range underflows small
// gradients): the loss is multiplied by `scale` before backward, the gradients
// divided by it before the step; a step with a non-finite gradient is skipped and
// the scale halved, and after `growth_interval` clean steps it doubles.
class GradScaler {
 public:
  struct Options {
    double init_scale = 65536.0;
    double growth_factor = 2.0;
    double backoff_factor = 0.5;
    int64_t growth_interval = 2000;
  };
  GradScaler() : GradScaler(Options{}) {}
  explicit GradScaler(Options options);

  at::Tensor scale(const at::Tensor& loss) const;
  // Divides every defined gradient of `params` by the scale; false when any
  // gradient holds an inf or a NaN (the step must then be skipped).
  bool unscale(const std::vector<at::Tensor>& params) const;
  // After each step: backoff on a skipped one, growth after enough clean ones.
  void update(bool finite);

  double current_scale() const { return scale_; }
  int64_t growth_tracker() const { return growth_tracker_; }
  int64_t skipped_steps() const { return skipped_; }
  // Checkpointed state: [scale, growth_tracker, skipped].
  std::vector<double> state() const;
  void load_state(const std::vector<double>& state);

 private:
  Options options_;
  double scale_;
  int64_t growth_tracker_ = 0, skipped_ = 0;
};

}  // namespace sscl
