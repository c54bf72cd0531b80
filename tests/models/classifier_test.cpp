#include "core/nn/classifier.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"

namespace sscl {
namespace {

// Features = the flattened image, so heads can be checked by hand.
class Flatten : public Backbone {
 public:
  explicit Flatten(int64_t dim) : dim_(dim) {}
  torch::Tensor forward(const torch::Tensor& images) override { return images.flatten(1); }
  int64_t feature_dim() const override { return dim_; }

 private:
  int64_t dim_;
};

using TaskClasses = std::vector<std::vector<int64_t>>;

int64_t classifier_parameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

// Task 0 owns classes {2, 0}, task 1 owns {1, 3}: head columns are scattered to them.
Classifier two_task_model() {
  Classifier model(std::make_shared<Flatten>(2), 4, TaskClasses{{2, 0}, {1, 3}});
  torch::NoGradGuard no_grad;
  for (const auto& p : model->named_parameters()) {
    if (p.key() == "heads.0.weight") p.value().copy_(torch::tensor({{1.f, 0.f}, {0.f, 1.f}}));
    if (p.key() == "heads.0.bias") p.value().copy_(torch::tensor({10.f, 20.f}));
    if (p.key() == "heads.1.weight") p.value().copy_(torch::tensor({{2.f, 2.f}, {-1.f, 0.f}}));
    if (p.key() == "heads.1.bias") p.value().zero_();
  }
  return model;
}

TEST(Classifier, MultiHeadScattersEachHeadToItsTasksClasses) {
  auto model = two_task_model();
  EXPECT_EQ(model->num_heads(), 2);
  // x = (3, 5): head 0 -> (3 + 10, 5 + 20) at classes (2, 0); head 1 -> (16, -3) at (1, 3).
  const auto logits = model->forward(torch::tensor({{{{3.f, 5.f}}}}));
  EXPECT_TRUE(torch::equal(logits, torch::tensor({{25.f, 16.f, 13.f, -3.f}})));
}

TEST(Classifier, MultiHeadTrainsOnlyTheHeadsItsLossTouches) {
  auto model = two_task_model();
  const auto logits = model->forward(torch::tensor({{{{3.f, 5.f}}}}));
  logits.index_select(1, torch::tensor({0, 2})).sum().backward();  // task 0's classes
  for (const auto& p : model->named_parameters()) {
    const bool task0 = p.key().rfind("heads.0.", 0) == 0;
    const auto grad = p.value().grad();
    if (task0) {
      ASSERT_TRUE(grad.defined()) << p.key();
      EXPECT_GT(grad.abs().sum().item<float>(), 0) << p.key();
    } else {
      EXPECT_TRUE(!grad.defined() || grad.abs().sum().item<float>() == 0) << p.key();
    }
  }
}

TEST(Classifier, MultiHeadHasAsManyParametersAsOneHead) {
  Classifier single(std::make_shared<Flatten>(6), 10);
  Classifier multi(std::make_shared<Flatten>(6), 10, TaskClasses{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}});
  EXPECT_EQ(classifier_parameters(*single), 6 * 10 + 10);
  EXPECT_EQ(classifier_parameters(*multi), 6 * 10 + 10);
}

TEST(Classifier, MultiHeadRejectsOverlappingOrMissingClasses) {
  EXPECT_THROW(Classifier(std::make_shared<Flatten>(2), 3, TaskClasses{{0, 1}, {1, 2}}), Error);
  EXPECT_THROW(Classifier(std::make_shared<Flatten>(2), 3, TaskClasses{{0, 1}}), Error);
  EXPECT_THROW(Classifier(std::make_shared<Flatten>(2), 3, TaskClasses{{0, 1}, {5}}), Error);
}

}  // namespace
}  // namespace sscl
