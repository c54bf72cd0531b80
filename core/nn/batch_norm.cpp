#include "core/nn/batch_norm.h"

#include <torch/autograd.h>
#include <torch/nn/functional/batchnorm.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/batchnorm.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "core/world.h"

namespace sscl {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Every dimension but the channels'.
std::vector<int64_t> reduced_dims(const Tensor& input) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < input.dim(); ++d) dims.push_back(d);
  return dims;
}

// A per-channel [C] tensor shaped to broadcast against the input.
Tensor per_channel(const Tensor& values, const Tensor& input) {
  std::vector<int64_t> shape(static_cast<size_t>(input.dim()), 1);
  shape[1] = values.size(0);
  return values.view(shape);
}

struct SyncBatchNormFunction : public torch::autograd::Function<SyncBatchNormFunction> {
  // running_mean/var may be undefined (track_running_stats = false); weight and
  // bias are undefined without affine.
  static Tensor forward(AutogradContext* ctx, const Tensor& input, const Tensor& weight, const Tensor& bias,
                        Tensor running_mean, Tensor running_var, double momentum, double eps, World* world) {
    const int64_t channels = input.size(1);
    const auto dims = reduced_dims(input);
    // Double sums: E[x²] − E[x]² of floats would lose the variance.
    const auto x = input.to(torch::kDouble);
    const double local_count = static_cast<double>(input.numel() / channels);  // 0 for a rank without rows
    auto stats = torch::cat({x.sum(dims), (x * x).sum(dims), torch::full({1}, local_count, x.options())});
    std::vector<Tensor> reduce{stats};
    world->all_reduce_sum(reduce);
    const double count = stats[2 * channels].item<double>();
    // Checked after the all-reduce, so every rank throws together.
    check(count > 1, "Expected more than 1 value per channel when training, got " +
                         std::to_string(static_cast<int64_t>(count)) + " over every rank's batch");
    const auto mean = stats.slice(0, 0, channels) / count;
    const auto var = (stats.slice(0, channels, 2 * channels) / count - mean * mean).clamp_min(0);
    const auto invstd = (var + eps).rsqrt().to(input.scalar_type());
    const auto mean_f = mean.to(input.scalar_type());
    if (running_mean.defined()) {
      running_mean.mul_(1 - momentum).add_(mean_f, momentum);
      running_var.mul_(1 - momentum).add_((var * (count / (count - 1))).to(input.scalar_type()), momentum);
    }
    auto output = (input - per_channel(mean_f, input)) * per_channel(invstd, input);
    if (weight.defined()) output = output * per_channel(weight, input) + per_channel(bias, input);
    ctx->save_for_backward({input, weight, mean_f, invstd});
    ctx->saved_data["count"] = count;
    ctx->saved_data["world"] = reinterpret_cast<int64_t>(world);
    return output;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &input = saved[0], &weight = saved[1], &mean = saved[2], &invstd = saved[3];
    const double count = ctx->saved_data["count"].toDouble();
    auto* world = reinterpret_cast<World*>(ctx->saved_data["world"].toInt());
    const auto dy = grads[0].contiguous();
    const auto dims = reduced_dims(input);
    const auto xmu = input - per_channel(mean, input);
    auto sum_dy = dy.sum(dims);
    auto sum_dy_xmu = (dy * xmu).sum(dims);
    Tensor grad_weight, grad_bias;
    if (weight.defined()) {
      grad_weight = sum_dy_xmu * invstd;  // this rank's: the gradient all-reduce averages it
      grad_bias = sum_dy.clone();
    }
    Tensor grad_input;
    if (ctx->needs_input_grad(0)) {
      const int64_t channels = input.size(1);
      auto sums = torch::cat({sum_dy, sum_dy_xmu});
      std::vector<Tensor> reduce{sums};
      world->all_reduce_sum(reduce);
      const auto mean_dy = sums.slice(0, 0, channels) / count;
      const auto mean_dy_xmu = sums.slice(0, channels, 2 * channels) / count;
      const auto scale = weight.defined() ? invstd * weight : invstd;
      grad_input = (dy - per_channel(mean_dy, input) - xmu * per_channel(invstd * invstd * mean_dy_xmu, input)) *
                   per_channel(scale, input);
    }
    return {grad_input, grad_weight, grad_bias, Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

template <int D>
BatchNormNdImpl<D>::BatchNormNdImpl(const torch::nn::BatchNormOptions& options) : options(options) {
  reset();
}

template <int D>
void BatchNormNdImpl<D>::reset() {
  const int64_t n = options.num_features();
  if (options.affine()) {
    weight = this->register_parameter("weight", torch::empty({n}));
    bias = this->register_parameter("bias", torch::empty({n}));
  } else {
    weight = this->register_parameter("weight", Tensor(), /*requires_grad=*/false);
    bias = this->register_parameter("bias", Tensor(), /*requires_grad=*/false);
  }
  if (options.track_running_stats()) {
    running_mean = this->register_buffer("running_mean", torch::zeros({n}));
    running_var = this->register_buffer("running_var", torch::ones({n}));
    num_batches_tracked = this->register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
  } else {
    running_mean = this->register_buffer("running_mean", Tensor());
    running_var = this->register_buffer("running_var", Tensor());
    num_batches_tracked = this->register_buffer("num_batches_tracked", Tensor());
  }
  reset_parameters();
}

template <int D>
void BatchNormNdImpl<D>::reset_running_stats() {
  if (!options.track_running_stats()) return;
  running_mean.zero_();
  running_var.fill_(1);
  num_batches_tracked.zero_();
}

template <int D>
void BatchNormNdImpl<D>::reset_parameters() {
  reset_running_stats();
  if (!options.affine()) return;
  torch::nn::init::ones_(weight);
  torch::nn::init::zeros_(bias);
}

template <int D>
bool BatchNormNdImpl<D>::synced() const {
  return world_ != nullptr;
}

template <int D>
Tensor BatchNormNdImpl<D>::forward(const Tensor& input) {
  const bool shape_ok = D == 1 ? (input.dim() == 2 || input.dim() == 3) : input.dim() == 4;
  check(shape_ok, std::string("BatchNorm") + std::to_string(D) + "d: expected " + (D == 1 ? "2D or 3D" : "4D") +
                      " input (got " + std::to_string(input.dim()) + "D input)");
  // As torch::nn::BatchNorm: momentum unset means a cumulative average.
  const auto& momentum = options.momentum();
  double factor = momentum ? *momentum : 0.0;
  if (this->is_training() && options.track_running_stats() && num_batches_tracked.defined()) {
    num_batches_tracked += 1;
    factor = momentum ? *momentum : 1.0 / num_batches_tracked.template item<double>();
  }
  const bool batch_statistics = this->is_training() || !options.track_running_stats();
  if (batch_statistics && synced())
    return SyncBatchNormFunction::apply(input, weight, bias, running_mean, running_var, factor, options.eps(),
                                        world_.get());
  return torch::nn::functional::detail::batch_norm(input, running_mean, running_var, weight, bias, batch_statistics,
                                                   factor, options.eps());
}

template <int D>
void BatchNormNdImpl<D>::pretty_print(std::ostream& stream) const {
  stream << "sscl::BatchNorm" << D << "d(" << options.num_features() << ", eps=" << options.eps() << ", momentum=";
  if (options.momentum())
    stream << *options.momentum();
  else
    stream << "None";
  stream << ", affine=" << options.affine() << ", track_running_stats=" << options.track_running_stats()
         << (synced() ? ", synced" : "") << ")";
}

template class BatchNormNdImpl<1>;
template class BatchNormNdImpl<2>;

int sync_batch_norm(torch::nn::Module& model, const std::shared_ptr<World>& world) {
  int count = 0;
  for (const auto& item : model.named_modules()) {
    auto& module = *item.value();
    if (auto* bn1 = dynamic_cast<BatchNorm1dImpl*>(&module)) {
      bn1->sync_with(world);
      ++count;
    } else if (auto* bn2 = dynamic_cast<BatchNorm2dImpl*>(&module)) {
      bn2->sync_with(world);
      ++count;
    } else if (dynamic_cast<torch::nn::BatchNorm1dImpl*>(&module) ||
               dynamic_cast<torch::nn::BatchNorm2dImpl*>(&module) ||
               dynamic_cast<torch::nn::BatchNorm3dImpl*>(&module)) {
      throw Error("'" + item.key() + "' is a torch::nn BatchNorm, which cannot sync across ranks; " +
                  "build the backbone with sscl::BatchNorm1d / BatchNorm2d (core/nn/batch_norm.h)");
    }
  }
  return count;
}

}  // namespace sscl
