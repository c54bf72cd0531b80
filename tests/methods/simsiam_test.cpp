// SimSiam's loss, its stop-gradient and collapse monitor on hand-computed
// tensors, and the shapes and trainable parts of its heads.
#include "methods/selfsup/simsiam.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace sscl {
namespace {

// Row 1: cos(p1, z2) = 1/sqrt(2), cos(p2, z1) = 8 / (2 * 5) = 0.8.
// Row 2: cos(p1, z2) = -1, cos(p2, z1) = 1.
// D(p1, z2) = -(0.70710678 - 1) / 2 = 0.14644661, D(p2, z1) = -0.9,
// L = 0.14644661 / 2 - 0.9 / 2 = -0.37677670.
TEST(SimSiam, LossIsTheSymmetrizedNegativeCosineWithStopGradient) {
  auto p1 = torch::tensor({{1.0, 0.0}, {0.0, 1.0}}, torch::requires_grad());
  auto p2 = torch::tensor({{0.0, 2.0}, {1.0, 1.0}}, torch::requires_grad());
  auto z1 = torch::tensor({{3.0, 4.0}, {1.0, 1.0}}, torch::requires_grad());
  auto z2 = torch::tensor({{1.0, 1.0}, {0.0, -1.0}}, torch::requires_grad());
  const auto loss = simsiam_loss(p1, p2, z1, z2);
  EXPECT_NEAR(loss.item<double>(), -0.37677670, 1e-6);
  loss.backward();
  // dL/dp1 (row 1) = -1/(2 N) (z / (|p||z|) - cos p / |p|^2) = -1/4 [0, 1/sqrt(2)];
  // row 2 is antiparallel to its target: a stationary point, gradient 0.
  ASSERT_TRUE(p1.grad().defined());
  EXPECT_TRUE(torch::allclose(p1.grad(), torch::tensor({{0.0f, -0.17677670f}, {0.0f, 0.0f}}), 1e-5, 1e-6)) << p1.grad();
  // The projections are targets only: no gradient reaches them through the loss.
  EXPECT_FALSE(z1.grad().defined());
  EXPECT_FALSE(z2.grad().defined());
}

TEST(SimSiam, NormalizedStdIsZeroForACollapsedBatch) {
  // Unit rows e1, e2: per dimension the values {1, 0}, unbiased std 1/sqrt(2).
  EXPECT_NEAR(normalized_std(torch::tensor({{2.0f, 0.0f}, {0.0f, 5.0f}})), 0.70710678, 1e-6);
  // Rows that differ only in length are the same direction: collapsed.
  EXPECT_NEAR(normalized_std(torch::tensor({{2.0f, 2.0f}, {3.0f, 3.0f}})), 0.0, 1e-7);
}

class LinearBackbone : public Backbone {
 public:
  LinearBackbone() : fc_(register_module("fc", torch::nn::Linear(12, 6))) {}
  torch::Tensor forward(const torch::Tensor& images) override { return fc_->forward(images.flatten(1)); }
  int64_t feature_dim() const override { return 6; }

 private:
  torch::nn::Linear fc_;
};

TEST(SimSiam, HeadsHaveTheConfiguredShapesAndEveryPartTrains) {
  torch::manual_seed(0);
  SimSiamOptions options;
  options.proj_dim = 8;
  options.pred_dim = 3;
  options.proj_layers = 3;
  SimSiam model(std::make_shared<LinearBackbone>(), options);
  int linears = 0;
  for (const auto& m : model->projector()->children())
    if (auto* linear = m->as<torch::nn::Linear>()) {
      ++linears;
      EXPECT_FALSE(linear->options.bias());
      EXPECT_EQ(linear->options.out_features(), 8);
    }
  EXPECT_EQ(linears, 3);
  // The projector's last BatchNorm has no affine parameters; the others do.
  std::vector<bool> affine;
  for (const auto& m : model->projector()->children())
    if (auto* bn = m->as<torch::nn::BatchNorm1d>()) affine.push_back(bn->options.affine());
  EXPECT_EQ(affine, (std::vector<bool>{true, true, false}));
  const auto view1 = torch::randn({5, 1, 3, 4}), view2 = torch::randn({5, 1, 3, 4});
  const SimSiamOutput out = model->forward(view1, view2);
  for (const auto& t : {out.p1, out.p2, out.z1, out.z2}) EXPECT_EQ(t.sizes(), (std::vector<int64_t>{5, 8}));
  simsiam_loss(out.p1, out.p2, out.z1, out.z2).backward();
  for (const auto& item : model->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0) << item.key();
  }
}

}  // namespace
}  // namespace sscl
