#include "methods/selfsup/simsiam.h"

#include <torch/torch.h>

namespace sscl {

namespace nn = torch::nn;

void SimSiamOptions::declare(OptionSpec<SimSiamOptions>& o) {
  using O = SimSiamOptions;
  o.key("proj_dim", &O::proj_dim, "SimSiam's projector width and output size").min(1);
  o.key("pred_dim", &O::pred_dim, "SimSiam's predictor bottleneck").min(1);
  o.key("proj_layers", &O::proj_layers, "projector layers (2: SimSiam's CIFAR setting, 3: ImageNet)").min(1);
}

at::Tensor simsiam_loss(const at::Tensor& p1, const at::Tensor& p2, const at::Tensor& z1, const at::Tensor& z2) {
  const auto d = [](const at::Tensor& p, const at::Tensor& z) {
    return -torch::cosine_similarity(p, z.detach(), /*dim=*/1).mean();
  };
  return d(p1, z2) / 2 + d(p2, z1) / 2;
}

double normalized_std(const at::Tensor& z) {
  torch::NoGradGuard no_grad;
  const auto unit = torch::nn::functional::normalize(z.to(at::kFloat), nn::functional::NormalizeFuncOptions().dim(1));
  return unit.std(/*dim=*/0).mean().item<double>();
}

SimSiamImpl::SimSiamImpl(std::shared_ptr<Backbone> backbone, const SimSiamOptions& options)
    : backbone_(register_module("backbone", std::move(backbone))) {
  nn::Sequential projector;
  int64_t in = backbone_->feature_dim();
  for (int64_t layer = 0; layer < options.proj_layers; ++layer) {
    const bool last = layer + 1 == options.proj_layers;
    projector->push_back(nn::Linear(nn::LinearOptions(in, options.proj_dim).bias(false)));
    projector->push_back(nn::BatchNorm1d(nn::BatchNorm1dOptions(options.proj_dim).affine(!last)));
    if (!last) projector->push_back(nn::ReLU(nn::ReLUOptions(true)));
    in = options.proj_dim;
  }
  projector_ = register_module("projector", projector);
  predictor_ = register_module(
      "predictor", nn::Sequential(nn::Linear(nn::LinearOptions(options.proj_dim, options.pred_dim).bias(false)),
                                  nn::BatchNorm1d(options.pred_dim), nn::ReLU(nn::ReLUOptions(true)),
                                  nn::Linear(options.pred_dim, options.proj_dim)));
}

SimSiamOutput SimSiamImpl::forward(const at::Tensor& view1, const at::Tensor& view2) {
  // Each view in a pass of its own, as SimSiam's code: BatchNorm normalises
  // over one view's batch at a time.
  SimSiamOutput out;
  out.z1 = projector_->forward(backbone_->forward(view1));
  out.z2 = projector_->forward(backbone_->forward(view2));
  out.p1 = predictor_->forward(out.z1);
  out.p2 = predictor_->forward(out.z2);
  return out;
}

}  // namespace sscl
