// SimSiam (Chen and He, "Exploring Simple Siamese Representation Learning",
// CVPR 2021): two augmented views of an image go through the backbone and a
// projector to z1, z2, and a predictor maps those to p1, p2. The loss is the
// negative cosine similarity of each prediction with the other view's
// projection under stop-gradient, averaged over both directions:
//
//   L = D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2,  D(p, z) = -mean_i cos(p_i, z_i)
//
// Without the stop-gradient the two branches collapse to a constant; the
// standard deviation of the l2-normalised z over the batch (about 1/sqrt(dim)
// when healthy, 0 when collapsed) is the paper's collapse monitor.
// tools/pretrain trains it; the backbone's weights are what it is for.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/nn/backbone.h"
#include "core/options.h"

namespace sscl {

struct SimSiamOptions {
  int64_t proj_dim = 2048;                             // the projector's width and z's size
  int64_t pred_dim = 512;                              // the predictor's bottleneck
  int64_t proj_layers = 2;                             // 2 in SimSiam's CIFAR experiments, 3 for ImageNet
  static void declare(OptionSpec<SimSiamOptions>& o);  // pretrain.*
};

// The loss above; p and z are [N, dim]. z1 and z2 are detached inside.
at::Tensor simsiam_loss(const at::Tensor& p1, const at::Tensor& p2, const at::Tensor& z1, const at::Tensor& z2);

// The mean over dimensions of the standard deviation over the batch of
// z / |z|: the collapse monitor.
double normalized_std(const at::Tensor& z);

struct SimSiamOutput {
  at::Tensor p1, p2, z1, z2;
};

class SimSiamImpl : public torch::nn::Module {
 public:
  // projector: proj_layers x (Linear without bias, BatchNorm1d), ReLU after all
  // but the last, whose BatchNorm has no affine parameters (as SimSiam's code);
  // predictor: Linear(proj_dim, pred_dim, no bias), BatchNorm1d, ReLU,
  // Linear(pred_dim, proj_dim).
  SimSiamImpl(std::shared_ptr<Backbone> backbone, const SimSiamOptions& options);

  SimSiamOutput forward(const at::Tensor& view1, const at::Tensor& view2);

  Backbone& backbone() { return *backbone_; }
  torch::nn::Sequential& projector() { return projector_; }
  torch::nn::Sequential& predictor() { return predictor_; }

 private:
  std::shared_ptr<Backbone> backbone_;
  torch::nn::Sequential projector_{nullptr}, predictor_{nullptr};
};
TORCH_MODULE(SimSiam);

}  // namespace sscl
