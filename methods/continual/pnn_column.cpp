#include "methods/continual/pnn_column.h"

#include <torch/torch.h>

#include <cmath>
#include <string>

#include "core/error.h"

namespace sscl {

namespace {

// PyTorch's default Linear/Conv initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
torch::Tensor lateral_init(std::vector<int64_t> shape, int64_t fan_in) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return torch::empty(shape).uniform_(-bound, bound);
}

// x W^T (+ b) on vectors [N, in], or the same 1x1 convolution on maps [N, in, H, W].
torch::Tensor lateral_project(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (x.dim() == 2) return torch::linear(x, weight, bias);
  check<Error>(x.dim() == 4, "pnn lateral adapter: expected [N, C] or [N, C, H, W] activations, got " +
                                 std::to_string(x.dim()) + " dimensions");
  return torch::conv2d(x, weight.view({weight.size(0), weight.size(1), 1, 1}), bias);
}

}  // namespace

LateralAdapterImpl::LateralAdapterImpl(int64_t earlier_columns, int64_t channels, double alpha_init) {
  check<Error>(earlier_columns > 0 && channels > 0, "pnn lateral adapter needs earlier columns and channels");
  const int64_t in = earlier_columns * channels;
  alpha = register_parameter("alpha", torch::rand({}) * alpha_init);
  v_weight = register_parameter("v_weight", lateral_init({channels, in}, in));
  v_bias = register_parameter("v_bias", lateral_init({channels}, in));
  u_weight = register_parameter("u_weight", lateral_init({channels, channels}, channels));
}

torch::Tensor LateralAdapterImpl::forward(const std::vector<torch::Tensor>& earlier) {
  check<Error>(earlier.size() * static_cast<size_t>(u_weight.size(0)) == static_cast<size_t>(v_weight.size(1)),
               "pnn lateral adapter: built for " + std::to_string(v_weight.size(1) / u_weight.size(0)) +
                   " earlier columns, given " + std::to_string(earlier.size()));
  const auto scaled = alpha * torch::cat(earlier, 1);
  return lateral_project(torch::relu(lateral_project(scaled, v_weight, v_bias)), u_weight, torch::Tensor());
}

PnnColumnImpl::PnnColumnImpl(std::shared_ptr<Backbone> backbone, int64_t earlier_columns, int64_t head_classes,
                             double alpha_init)
    : backbone_(std::move(backbone)), earlier_columns_(earlier_columns) {
  check<Error>(backbone_ != nullptr, "pnn column: no backbone");
  staged_ = as_staged(*backbone_);
  check<ConfigError>(staged_ != nullptr,
                     "method 'pnn' needs a model.backbone that splits into stages (mlp, small_cnn, resnet18, "
                     "resnet34, resnet50, reduced_resnet18); the configured backbone has none");
  register_module("backbone", backbone_);
  if (earlier_columns_ > 0) {
    adapter_list_ = register_module("adapters", torch::nn::ModuleList());
    for (int64_t a = 0; a < staged_->num_stages(); ++a) {
      LateralAdapter adapter(earlier_columns_, staged_->stage_shape(a).channels, alpha_init);
      adapter_list_->push_back(adapter);
      adapters_.push_back(adapter);
    }
  }
  if (head_classes > 0) head_ = register_module("head", torch::nn::Linear(backbone_->feature_dim(), head_classes));
}

PnnColumnImpl::Output PnnColumnImpl::forward(const torch::Tensor& images,
                                             const std::vector<ColumnActivations>& earlier) {
  check<Error>(static_cast<int64_t>(earlier.size()) == earlier_columns_,
               "pnn column: expected the activations of " + std::to_string(earlier_columns_) +
                   " earlier columns, given " + std::to_string(earlier.size()));
  // The earlier columns' outputs of stage a, in column order.
  auto lateral = [&](int64_t a) {
    std::vector<torch::Tensor> inputs;
    for (const auto& column : earlier) inputs.push_back(column.at(static_cast<size_t>(a)));
    return adapters_[static_cast<size_t>(a)]->forward(inputs);
  };
  Output out;
  auto x = images;
  for (int64_t s = 0; s < staged_->num_stages(); ++s) {
    if (s > 0 && earlier_columns_ > 0) x = x + lateral(s - 1);
    x = staged_->forward_stage(s, x);
    out.stages.push_back(x);
  }
  out.head_input = earlier_columns_ > 0 ? x + lateral(staged_->num_stages() - 1) : x;
  return out;
}

}  // namespace sscl
