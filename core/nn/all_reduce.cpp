#include "core/nn/all_reduce.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <vector>

#include "core/world.h"

namespace sscl {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct AllReduceSumFunction : public torch::autograd::Function<AllReduceSumFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& local, World* world) {
    ctx->saved_data["world"] = reinterpret_cast<int64_t>(world);
    std::vector<Tensor> sum{local.detach().clone()};
    world->all_reduce_sum(sum);
    return sum[0];
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto* world = reinterpret_cast<World*>(ctx->saved_data["world"].toInt());
    std::vector<Tensor> grad{grad_outputs[0].contiguous().clone()};
    world->all_reduce_sum(grad);
    return {grad[0], Tensor()};
  }
};

}  // namespace

at::Tensor all_reduce_sum_with_grad(World& world, const at::Tensor& local) {
  if (!world.distributed()) return local;
  return AllReduceSumFunction::apply(local, &world);
}

at::Tensor gather_shards_with_grad(World& world, const at::Tensor& local, int64_t n) {
  if (!world.distributed()) return local;
  const auto [begin, end] = world.shard(n);
  TORCH_CHECK(local.size(0) == end - begin, "gather_shards_with_grad: rank ", world.rank(), " holds ", local.size(0),
              " rows, its shard of ", n, " is ", end - begin);
  // Zeros at the other ranks' rows, so the sum is every rank's rows in place.
  auto shape = local.sizes().vec();
  shape[0] = begin;
  auto before = at::zeros(shape, local.options());
  shape[0] = n - end;
  auto after = at::zeros(shape, local.options());
  return all_reduce_sum_with_grad(world, at::cat({before, local, after}));
}

}  // namespace sscl
