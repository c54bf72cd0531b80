// A-GEM's projection on hand values and on the model's real gradients; GDumb's
// class-balanced memory and its restart from a seeded fresh initialisation.
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <sstream>
#include <string>

#include "core/config.h"
#include "core/method.h"
#include "methods/common/model_copy.h"
#include "methods/continual/agem.h"
#include "methods/continual/gdumb.h"
#include "tasks/split_semi_tasks.h"
#include "tests/core/fake_run.h"
#include "tests/methods/method_run_fixture.h"
#include "tests/tasks/synthetic_data.h"

namespace sscl {
namespace {

RunState at_task(int task, int64_t iter = 0) {
  RunState s;
  s.num_tasks = 2;
  s.task = task;
  s.iter = iter;
  return s;
}

void set_gradients(const std::vector<torch::Tensor>& params, const torch::Tensor& flat) {
  int64_t offset = 0;
  for (const auto& p : params) {
    p.mutable_grad() = flat.narrow(0, offset, p.numel()).view_as(p).clone();
    offset += p.numel();
  }
}

// Saves `from`'s state and loads it into `into` through an archive's bytes, as a
// checkpoint does.
void agem_state_round_trip(Stateful& from, Stateful& into) {
  StateVisitor::from_bytes(into, StateVisitor::to_bytes(from), torch::kCPU);
}

torch::Tensor gradients(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> parts;
  for (const auto& p : params) parts.push_back(p.grad().reshape({-1}));
  return torch::cat(parts);
}

TEST(Agem, ProjectionRemovesTheConflictingComponentOnly) {
  const auto g_ref = torch::tensor({1.0, 1.0});
  // g = (1, -3): g.g_ref = -2 < 0 -> g' = g - (-2 / 2) g_ref = (2, -2), and g'.g_ref = 0.
  const auto projected = agem_project(torch::tensor({1.0, -3.0}), g_ref);
  EXPECT_TRUE(torch::allclose(projected, torch::tensor({2.0, -2.0})));
  EXPECT_NEAR(torch::dot(projected, g_ref).item<double>(), 0.0, 1e-7);
  // g = (2, 1): g.g_ref = 3 >= 0, and g = (1, -1): g.g_ref = 0 -> unchanged.
  EXPECT_TRUE(torch::equal(agem_project(torch::tensor({2.0, 1.0}), g_ref), torch::tensor({2.0, 1.0})));
  EXPECT_TRUE(torch::equal(agem_project(torch::tensor({1.0, -1.0}), g_ref), torch::tensor({1.0, -1.0})));
}

TEST(Agem, FlatGradientsRoundTripAndFillMissingOnesWithZeros) {
  auto a = torch::zeros({2, 2}, torch::requires_grad());
  auto b = torch::zeros({3}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({{1.0f, 2.0f}, {3.0f, 4.0f}});
  EXPECT_TRUE(torch::equal(flat_gradient({a, b}), torch::tensor({1.f, 2.f, 3.f, 4.f, 0.f, 0.f, 0.f})));
  assign_flat_gradient({a, b}, torch::arange(7, torch::kFloat));
  EXPECT_TRUE(torch::equal(a.grad(), torch::tensor({{0.f, 1.f}, {2.f, 3.f}})));
  EXPECT_TRUE(torch::equal(b.grad(), torch::tensor({4.f, 5.f, 6.f})));
}

TEST(Agem, AfterBackwardProjectsAConflictingGradientAndKeepsAnAgreeingOne) {
  testing::FakeTaskData data;
  MethodContext context;
  context.model = testing::make_tiny_classifier();
  context.task_classes = {data.classes(0), data.classes(1)};
  context.data = &data;
  context.batch_size = 2;
  Agem agem(ReplayOptions{10, 10});
  agem.attach(context);
  // Three batches of task 0, each offered to the memory after its step.
  for (int64_t iter = 0; iter < 3; ++iter) {
    agem.step(data.train_batch(0, iter), at_task(0, iter));
    agem.after_iter(at_task(0, iter));
  }
  ASSERT_EQ(agem.buffer().size(), 6);

  // g_ref as A-GEM computes it: a draw of 10 covers the whole memory, and the fake
  // data's views are deterministic.
  const auto params = context.model->parameters();
  const auto all = agem.buffer().all();
  const auto loss =
      torch::nn::functional::cross_entropy(context.model->forward(data.views(all.images, View::kWeak, 0)), all.labels);
  std::vector<torch::Tensor> parts;
  for (const auto& g : torch::autograd::grad({loss}, params)) parts.push_back(g.reshape({-1}));
  const auto g_ref = torch::cat(parts);
  ASSERT_GT(g_ref.norm().item<double>(), 0.0);
  // w: a vector orthogonal to g_ref.
  const auto v = torch::linspace(-1, 1, g_ref.numel());
  const auto w = v - (torch::dot(v, g_ref) / torch::dot(g_ref, g_ref)) * g_ref;

  // Conflicting: g = w - g_ref has g.g_ref = -|g_ref|^2 < 0; the projection removes
  // exactly its g_ref component: g' = g - (-|g_ref|^2 / |g_ref|^2) g_ref = w.
  set_gradients(params, w - g_ref);
  agem.after_backward(at_task(1));
  const auto projected = gradients(params);
  EXPECT_TRUE(torch::allclose(projected, w, 1e-4, 1e-6));
  EXPECT_NEAR(torch::dot(projected, g_ref).item<double>(), 0.0, 1e-5 * g_ref.norm().item<double>());
  EXPECT_FALSE(torch::allclose(projected, w - g_ref));

  // Agreeing: g = w + g_ref has g.g_ref > 0 and stays as it is.
  set_gradients(params, w + g_ref);
  agem.after_backward(at_task(1));
  EXPECT_TRUE(torch::equal(gradients(params), w + g_ref));

  // One of the two checks projected; the counters and the memory survive a checkpoint.
  const auto stats = agem.stats();
  ASSERT_FALSE(stats.empty());
  EXPECT_EQ(stats.back(), (std::pair<std::string, double>{"projection_rate", 0.5}));
  Agem restored(ReplayOptions{10, 10});
  restored.attach(context);
  agem_state_round_trip(agem, restored);
  EXPECT_EQ(restored.stats(), stats);
  EXPECT_TRUE(torch::equal(restored.buffer().all().ids, agem.buffer().all().ids));
}

TEST(MemoryMethods, AgemGdumbAndIcarlRefuseAnEmptyMemory) {
  for (const std::string name : {"agem", "gdumb", "icarl"}) {
    const Config config = Config::from_string("[method]\nbuffer_size = 0\n", "memory.toml");
    try {
      MethodRegistry::get().at(name)(config.section("method"));
      ADD_FAILURE() << name << " accepted buffer_size = 0";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("buffer_size"), std::string::npos) << e.what();
    }
  }
  // ER's buffer may be empty (plain fine-tuning with ER's bookkeeping).
  const Config er = Config::from_string("[method]\nbuffer_size = 0\n", "er.toml");
  EXPECT_NO_THROW(MethodRegistry::get().at("er")(er.section("method")));
}

// Two tasks of the 4-class synthetic data, 10 labeled images per class, small CNN.
class GdumbRun : public testing::MethodRunFixture {
 protected:
  GdumbRun() : MethodRunFixture(10, 7) {}
};

bool same_state(Classifier& a, Classifier& b) {
  const auto pa = a->named_parameters(true), pb = b->named_parameters(true);
  for (const auto& item : pa)
    if (!torch::equal(item.value(), pb[item.key()])) return false;
  const auto ba = a->named_buffers(true), bb = b->named_buffers(true);
  for (const auto& item : ba)
    if (!torch::equal(item.value(), bb[item.key()])) return false;
  return true;
}

TEST_F(GdumbRun, BeforeTaskRestoresTheSeededFreshInitialisation) {
  Gdumb gdumb(ReplayOptions{8, 4});
  gdumb.attach(context_);
  EXPECT_TRUE(gdumb.traits().fresh_optimizer_each_task);
  EXPECT_FALSE(gdumb.traits().accepts_labels_mid_task);
  // "Trained": every parameter and BatchNorm statistic moved away from the init.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : context_.model->parameters()) p.add_(1.0);
    for (auto& b : context_.model->buffers()) b.add_(1);
  }
  std::vector<torch::Tensor> trained;
  for (const auto& p : context_.model->parameters()) trained.push_back(p.clone());

  gdumb.before_task(at_task(1));
  auto fresh = seeded_fresh_classifier(context_.model, context_, gdumb_init_seed(7, 1));
  EXPECT_TRUE(same_state(context_.model, fresh));
  const auto params = context_.model->parameters();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_FALSE(torch::equal(params[i], trained[i])) << "parameter " << i;
  for (const auto& item : context_.model->named_buffers(true)) {
    if (item.key().find("running_mean") != std::string::npos) {
      EXPECT_EQ(item.value().abs().max().item<double>(), 0.0) << item.key();  // BatchNorm's init
    }
  }
  // Another task's seed gives another initialisation.
  auto other = seeded_fresh_classifier(context_.model, context_, gdumb_init_seed(7, 0));
  EXPECT_FALSE(same_state(other, fresh));
}

TEST_F(GdumbRun, SeededInitialisationLeavesTheGlobalGeneratorAsItWas) {
  torch::manual_seed(5);
  const auto expected = torch::rand({4});
  torch::manual_seed(5);
  seeded_fresh_classifier(context_.model, context_, gdumb_init_seed(7, 0));
  EXPECT_TRUE(torch::equal(torch::rand({4}), expected));
}

TEST_F(GdumbRun, MemoryIsClassBalancedAfterEachTask) {
  Gdumb gdumb(ReplayOptions{8, 4});
  gdumb.attach(context_);
  gdumb.before_task(at_task(0));  // 20 labeled images of 2 classes offered to 8 slots
  auto counts = gdumb.memory().class_counts();
  for (int64_t c : tasks_.classes(0)) EXPECT_EQ(counts.at(c), 4) << "class " << c;
  gdumb.before_task(at_task(1));  // 20 more of 2 new classes
  counts = gdumb.memory().class_counts();
  EXPECT_EQ(gdumb.memory().size(), 8);
  EXPECT_EQ(gdumb.memory().seen(), 40);
  for (int t = 0; t < 2; ++t)
    for (int64_t c : tasks_.classes(t)) EXPECT_EQ(counts.at(c), 2) << "class " << c;
}

TEST_F(GdumbRun, StepTrainsOnTheMemoryAndIgnoresTheLoadersBatch) {
  Gdumb gdumb(ReplayOptions{8, 4});
  gdumb.attach(context_);
  gdumb.before_task(at_task(0));
  TrainBatch batch;  // images that would poison any loss computed from them
  batch.labeled.images = torch::full({4, 1, 12, 12}, std::nan(""));
  batch.labeled.labels = torch::zeros({4}, torch::kLong);
  batch.labeled.indices = torch::arange(4);
  const auto terms = gdumb.step(batch, at_task(0));
  ASSERT_EQ(terms.size(), 1u);
  EXPECT_TRUE(std::isfinite(terms.front().second.item<double>()));
  EXPECT_TRUE(terms.front().second.requires_grad());
}

}  // namespace
}  // namespace sscl
