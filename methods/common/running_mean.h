// The mean of a figure over a run (a mask rate, a confidence) for results.json.
// The sum stays on the device, so recording costs no synchronisation; it is read
// once at the end. Checkpoints carry it, so a resumed run reports the same mean.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace torch::serialize {
class OutputArchive;
class InputArchive;
}  // namespace torch::serialize

namespace sscl {

class RunningMean {
 public:
  // Adds every entry of `values`.
  void add(const at::Tensor& values);
  double mean() const;  // 0 before anything was added

  void save(torch::serialize::OutputArchive& archive, const std::string& key) const;
  void load(torch::serialize::InputArchive& archive, const std::string& key, const c10::Device& device);

 private:
  at::Tensor sum_;  // double scalar on the device of the values
  int64_t count_ = 0;
};

}  // namespace sscl
