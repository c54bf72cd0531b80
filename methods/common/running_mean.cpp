#include "methods/common/running_mean.h"

#include <torch/torch.h>

namespace sscl {

void RunningMean::add(const at::Tensor& values) {
  if (values.numel() == 0) return;
  const auto sum = values.detach().to(torch::kDouble).sum();
  sum_ = sum_.defined() ? sum_ + sum : sum;
  count_ += values.numel();
}

double RunningMean::mean() const { return count_ > 0 ? sum_.item<double>() / static_cast<double>(count_) : 0.0; }

}  // namespace sscl
