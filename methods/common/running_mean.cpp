#include "methods/common/running_mean.h"

#include <torch/serialize/archive.h>
#include <torch/torch.h>

namespace sscl {

void RunningMean::add(const at::Tensor& values) {
  if (values.numel() == 0) return;
  const auto sum = values.detach().to(torch::kDouble).sum();
  sum_ = sum_.defined() ? sum_ + sum : sum;
  count_ += values.numel();
}

double RunningMean::mean() const { return count_ > 0 ? sum_.item<double>() / static_cast<double>(count_) : 0.0; }

void RunningMean::save(torch::serialize::OutputArchive& archive, const std::string& key) const {
  archive.write(key + ".sum", sum_.defined() ? sum_.cpu() : torch::zeros({}, torch::kDouble));
  archive.write(key + ".count", torch::tensor(count_));
}

void RunningMean::load(torch::serialize::InputArchive& archive, const std::string& key, const c10::Device& device) {
  at::Tensor sum, count;
  archive.read(key + ".sum", sum);
  archive.read(key + ".count", count);
  count_ = count.item<int64_t>();
  sum_ = count_ > 0 ? sum.to(device) : at::Tensor();
}

}  // namespace sscl
