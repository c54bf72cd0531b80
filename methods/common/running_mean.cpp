#include "methods/common/running_mean.h"

#include <torch/torch.h>

#include <vector>

namespace sscl {

void RunningMean::add(const at::Tensor& values) {
  if (values.numel() == 0) return;
  const auto sum = values.detach().to(torch::kDouble).sum();
  sum_ = sum_.defined() ? sum_ + sum : sum;
  count_ += values.numel();
}

void RunningMean::add(const at::Tensor& values, World& world) {
  if (!world.distributed()) return add(values);
  const auto local = values.detach().to(torch::kDouble);
  std::vector<at::Tensor> totals{
      torch::stack({local.sum(), torch::full({}, static_cast<double>(local.numel()), local.options())}).cpu()};
  world.all_reduce_sum(totals);
  const auto count = static_cast<int64_t>(totals[0][1].item<double>());
  if (count == 0) return;
  const auto sum = totals[0][0].to(values.device());
  sum_ = sum_.defined() ? sum_ + sum : sum;
  count_ += count;
}

double RunningMean::mean() const { return count_ > 0 ? sum_.item<double>() / static_cast<double>(count_) : 0.0; }

}  // namespace sscl
