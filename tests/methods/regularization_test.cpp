// SI, online EWC and LwF: their defining maths on hand-computed tensors, and their
// behaviour inside a short run on synthetic data (importances accumulate from the
// optimizer's real steps, the penalty is zero at the anchor and grows away from
// it, the teacher stays frozen, state survives a save/load).
#include "methods/continual/regularization.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "core/method.h"
#include "core/run_builder.h"
#include "methods/continual/ewc.h"
#include "methods/continual/lwf.h"
#include "methods/continual/si.h"
#include "tasks/split_semi_tasks.h"
#include "tests/tasks/synthetic_data.h"
#include "tests/test_util.h"

namespace sscl {
namespace {

torch::Tensor vec(std::initializer_list<double> values) {
  return torch::tensor(std::vector<double>(values), torch::kDouble);
}

// ---------------------------------------------------------------------------
// SI maths

TEST(SiMaths, PathIntegralUsesTheRealChangeNotLrTimesGradSquared) {
  const double lr = 0.1;
  auto omega = torch::zeros({2}, torch::kDouble);
  // Step 1, plain SGD: delta = -lr * g. -g * delta = [1 * 0.1, 2 * 0.2] = [0.1, 0.4].
  const auto g1 = vec({1.0, -2.0}), d1 = vec({-0.1, 0.2});
  omega = si_path_step(omega, g1, d1);
  EXPECT_TRUE(torch::allclose(omega, vec({0.1, 0.4})));
  // Step 2, momentum carried the parameters further than -lr * g = [-0.05, -0.1]
  // and the second one even against its gradient: -g * delta = [0.5 * 0.15, -1 * 0.1]
  // = [0.075, -0.1], so omega = [0.175, 0.3].
  const auto g2 = vec({0.5, 1.0}), d2 = vec({-0.15, 0.1});
  omega = si_path_step(omega, g2, d2);
  EXPECT_TRUE(torch::allclose(omega, vec({0.175, 0.3})));
  // The reference's rule, lr * sum g^2 = 0.1 * [1 + 0.25, 4 + 1] = [0.125, 0.5], differs.
  const auto reference_rule = lr * (g1.pow(2) + g2.pow(2));
  EXPECT_TRUE(torch::allclose(reference_rule, vec({0.125, 0.5})));
  EXPECT_FALSE(torch::allclose(omega, reference_rule));
}

TEST(SiMaths, ConsolidationDividesByTheTaskDriftAndClampsAtZero) {
  // Omega + omega / (Delta^2 + xi), xi = 1:
  //   [0.5 + 0.2 / (1 + 1), 0 + 0.3 / (0.25 + 1), 1 + (-3) / (0 + 1)] = [0.6, 0.24, -2] -> clamp -> [0.6, 0.24, 0].
  const auto big_omega = si_consolidate(vec({0.5, 0.0, 1.0}), vec({0.2, 0.3, -3.0}), vec({1.0, 0.5, 0.0}), 1.0);
  EXPECT_TRUE(torch::allclose(big_omega, vec({0.6, 0.24, 0.0})));
}

TEST(SiMaths, PenaltySumsOverEveryParameterTensor) {
  // c * sum Omega (theta - theta*)^2 with c = 0.5: 0.5 * (0.6 * 1^2 + 0.24 * 1^2 + 2 * 0.5^2) = 0.5 * 1.34 = 0.67.
  const std::vector<torch::Tensor> theta{vec({1.0, 2.0}), vec({0.5})};
  const std::vector<torch::Tensor> anchor{vec({0.0, 1.0}), vec({0.0})};
  const std::vector<torch::Tensor> importance{vec({0.6, 0.24}), vec({2.0})};
  EXPECT_NEAR(quadratic_penalty(theta, anchor, importance, 0.5).item<double>(), 0.67, 1e-12);
  // No importance yet (task 0): zero.
  EXPECT_EQ(quadratic_penalty(theta, {}, {}, 0.5).item<double>(), 0.0);
}

TEST(SiMaths, TaskGradientRemovesThePenaltysOwnGradient) {
  // 2 c Omega (theta - theta*) with c = 0.5: [0.5 * 1, 2 * (-1)] = [0.5, -2]; g = [1, 1] - [0.5, -2] = [0.5, 3].
  const auto omega = vec({0.5, 2.0}), theta = vec({1.0, 0.0}), anchor = vec({0.0, 1.0});
  EXPECT_TRUE(torch::allclose(si_task_gradient(vec({1.0, 1.0}), omega, theta, anchor, 0.5), vec({0.5, 3.0})));
  // ... which is exactly what autograd gives for the penalty.
  const auto leaf = theta.clone().set_requires_grad(true);
  quadratic_penalty({leaf}, {anchor}, {omega}, 0.5).backward();
  EXPECT_TRUE(torch::allclose(leaf.grad(), vec({0.5, -2.0})));
}

// ---------------------------------------------------------------------------
// Online EWC maths, on a linear softmax model logits = W x, whose per-image
// gradients are known: d log p(y|x) / dW = (onehot(y) - p) x^T.
//
// W = [[ln 3, 0], [0, 0]]; x1 = [1, 0] (label 0), x2 = [0, 2] (label 1).
// p(.|x1) = softmax([ln 3, 0]) = [3/4, 1/4]; p(.|x2) = softmax([0, 0]) = [1/2, 1/2].

struct LinearModel {
  torch::Tensor w = torch::tensor({{std::log(3.0), 0.0}, {0.0, 0.0}}, torch::kDouble).set_requires_grad(true);
  torch::Tensor images = torch::tensor({{1.0, 0.0}, {0.0, 2.0}}, torch::kDouble);
  torch::Tensor labels = torch::tensor({0, 1}, torch::kLong);
  LogitsFn logits_of() const {
    return [w = w](const torch::Tensor& x) { return x.matmul(w.t()); };
  }
};

TEST(OewcFisher, EmpiricalFisherIsTheMeanOfPerImageSquaredGradients) {
  LinearModel m;
  Rng rng(0);
  const auto fisher = diagonal_fisher(m.logits_of(), {m.w}, m.images, m.labels, FisherEstimator::kEmpirical, rng);
  // x1, y = 0: (onehot - p) = [1/4, -1/4] -> grad [[1/4, 0], [-1/4, 0]] -> squared [[1/16, 0], [1/16, 0]].
  // x2, y = 1: (onehot - p) = [-1/2, 1/2] -> grad [[0, -1], [0, 1]]     -> squared [[0, 1], [0, 1]].
  // Mean: [[1/32, 1/2], [1/32, 1/2]].
  const auto expected = torch::tensor({{1.0 / 32, 0.5}, {1.0 / 32, 0.5}}, torch::kDouble);
  ASSERT_EQ(fisher.size(), 1u);
  EXPECT_TRUE(torch::allclose(fisher[0], expected));
  // The square of the mean gradient is something else: mean grad = [[1/8, -1/2], [-1/8, 1/2]],
  // squared [[1/64, 1/4], [1/64, 1/4]].
  const auto mean_loglik = torch::log_softmax(m.images.matmul(m.w.t()), 1).gather(1, m.labels.unsqueeze(1)).mean();
  const auto mean_grad = torch::autograd::grad({mean_loglik}, {m.w})[0];
  EXPECT_TRUE(torch::allclose(mean_grad.pow(2), torch::tensor({{1.0 / 64, 0.25}, {1.0 / 64, 0.25}}, torch::kDouble)));
  EXPECT_FALSE(torch::allclose(mean_grad.pow(2), fisher[0]));
  EXPECT_FALSE(m.w.grad().defined());  // the Fisher pass leaves .grad alone
}

TEST(OewcFisher, ExpectedFisherWeightsEveryClassByThePrediction) {
  LinearModel m;
  Rng rng(0);
  const auto fisher = diagonal_fisher(m.logits_of(), {m.w}, m.images, m.labels, FisherEstimator::kExpected, rng);
  // Per image: sum_y p_y (onehot(y) - p)^2 x^2 = p0 p1 x^2 for two classes (each row of W).
  // x1: 3/4 * 1/4 = 3/16 times [1, 0]; x2: 1/4 times [0, 4] = [0, 1]. Mean: [[3/32, 1/2], [3/32, 1/2]].
  const auto expected = torch::tensor({{3.0 / 32, 0.5}, {3.0 / 32, 0.5}}, torch::kDouble);
  EXPECT_TRUE(torch::allclose(fisher[0], expected));
}

TEST(OewcFisher, MaskedClassesGetNoWeight) {
  // A third class with large logits, masked out (-inf) as train_logits does: the
  // first two rows match the two-class model, the masked row gets no Fisher.
  auto w = torch::tensor({{std::log(3.0), 0.0}, {0.0, 0.0}, {5.0, 5.0}}, torch::kDouble).set_requires_grad(true);
  const auto allowed = torch::tensor({true, true, false});
  const LogitsFn logits_of = [&](const torch::Tensor& x) {
    return x.matmul(w.t()).masked_fill(~allowed, -std::numeric_limits<double>::infinity());
  };
  LinearModel m;
  for (auto estimator : {FisherEstimator::kExpected, FisherEstimator::kSampled}) {
    Rng rng(1);
    const auto fisher = diagonal_fisher(logits_of, {w}, m.images, m.labels, estimator, rng);
    EXPECT_TRUE(torch::isfinite(fisher[0]).all().item<bool>());
    EXPECT_EQ(fisher[0][2].abs().sum().item<double>(), 0.0);
  }
  Rng rng(1);
  const auto fisher = diagonal_fisher(logits_of, {w}, m.images, m.labels, FisherEstimator::kExpected, rng);
  EXPECT_TRUE(
      torch::allclose(fisher[0].narrow(0, 0, 2), torch::tensor({{3.0 / 32, 0.5}, {3.0 / 32, 0.5}}, torch::kDouble)));
}

TEST(OewcFisher, SampledFisherAveragesToTheExpectedOne) {
  // 4000 copies of x1: each contributes 1/16 (y = 0, probability 3/4) or 9/16
  // (y = 1, probability 1/4) to both rows' first column; the mean tends to 3/16.
  // Standard error: sqrt((3/4 * 1/256 + 1/4 * 81/256 - (3/16)^2) / 4000) ~ 0.0034.
  LinearModel m;
  const auto images = m.images.narrow(0, 0, 1).repeat({4000, 1});
  Rng rng(7);
  const auto fisher = diagonal_fisher(m.logits_of(), {m.w}, images, torch::Tensor(), FisherEstimator::kSampled, rng);
  EXPECT_NEAR(fisher[0][0][0].item<double>(), 3.0 / 16, 0.015);
  EXPECT_NEAR(fisher[0][1][0].item<double>(), 3.0 / 16, 0.015);
  EXPECT_EQ(fisher[0][0][1].item<double>(), 0.0);
  // Every single value is one of the two possible ones, so it is sampled, not averaged.
  Rng one(7);
  const auto single = diagonal_fisher(m.logits_of(), {m.w}, images.narrow(0, 0, 1), torch::Tensor(),
                                      FisherEstimator::kSampled, one)[0][0][0]
                          .item<double>();
  EXPECT_TRUE(std::abs(single - 1.0 / 16) < 1e-12 || std::abs(single - 9.0 / 16) < 1e-12) << single;
}

TEST(OewcMaths, OnlineUpdateDecaysThePreviousFisher) {
  // gamma F + F_task with gamma = 0.9: [0.9 + 0.5, 1.8 + 0.5] = [1.4, 2.3].
  EXPECT_TRUE(torch::allclose(online_fisher_update(vec({1.0, 2.0}), vec({0.5, 0.5}), 0.9), vec({1.4, 2.3})));
  // The first task: its own Fisher.
  EXPECT_TRUE(torch::allclose(online_fisher_update(torch::Tensor(), vec({0.5, 0.25}), 0.9), vec({0.5, 0.25})));
}

TEST(OewcMaths, PenaltyIsLambdaTimesFisherWeightedSquaredDrift) {
  // lambda sum F (theta - theta*)^2 with lambda = 10: 10 * (3/32 * 4 + 1/2 * 1) = 10 * 0.875 = 8.75.
  EXPECT_NEAR(quadratic_penalty({vec({2.0, -1.0})}, {vec({0.0, 0.0})}, {vec({3.0 / 32, 0.5})}, 10.0).item<double>(),
              8.75, 1e-12);
}

// ---------------------------------------------------------------------------
// LwF maths. Three classes; the old classes are {0, 1}.
// Teacher row 0: [2 ln 3, 0, 100] -> /T = [ln 3, 0] on the old classes -> p = [3/4, 1/4].
// Model row 0:   [0, 0, -50]      -> /T = [0, 0]                      -> q = [1/2, 1/2].
// KL(p || q) = 3/4 ln(3/2) + 1/4 ln(1/2); T^2 KL = 3 ln 1.5 + ln 0.5 ~ 0.5232.
// Row 1 has equal old-class logits in both (KL = 0); the batch mean halves it.

struct KdCase {
  torch::Tensor old_logits = torch::tensor({{2 * std::log(3.0), 0.0, 100.0}, {1.0, 2.0, 3.0}}, torch::kDouble);
  torch::Tensor new_logits =
      torch::tensor({{0.0, 0.0, -50.0}, {1.0, 2.0, -7.0}}, torch::kDouble).set_requires_grad(true);
  torch::Tensor old_classes = torch::tensor({true, true, false});
};

TEST(LwfDistillation, HandComputedValueAtTemperatureTwo) {
  KdCase k;
  const double row0 = 3 * std::log(1.5) + std::log(0.5);
  EXPECT_NEAR(distillation_loss(k.new_logits, k.old_logits, k.old_classes, 2.0).item<double>(), row0 / 2, 1e-9);
  // The model reproducing the teacher gives zero.
  EXPECT_NEAR(distillation_loss(k.old_logits, k.old_logits, k.old_classes, 2.0).item<double>(), 0.0, 1e-12);
}

TEST(LwfDistillation, OnlyTheOldClassesEnter) {
  KdCase k;
  const auto kd = distillation_loss(k.new_logits, k.old_logits, k.old_classes, 2.0);
  // Changing the new class's logit in either model changes nothing.
  auto other_new = k.new_logits.detach().clone();
  auto other_old = k.old_logits.clone();
  other_new.select(1, 2).fill_(123.0);
  other_old.select(1, 2).fill_(-9.0);
  EXPECT_NEAR(distillation_loss(other_new, other_old, k.old_classes, 2.0).item<double>(), kd.item<double>(), 1e-12);
  // The gradient is T^2 * (1/T) (q - p) / N = T (q - p) / N on the old classes, 0 on the new:
  // row 0: 2 * ([1/2, 1/2] - [3/4, 1/4]) / 2 = [-1/4, 1/4]; row 1: 0.
  kd.backward();
  const auto expected = torch::tensor({{-0.25, 0.25, 0.0}, {0.0, 0.0, 0.0}}, torch::kDouble);
  EXPECT_TRUE(torch::allclose(k.new_logits.grad(), expected, 1e-9, 1e-12));
}

TEST(LwfDistillation, TeacherLogitsAreConstants) {
  KdCase k;
  auto old = k.old_logits.clone().set_requires_grad(true);
  distillation_loss(k.new_logits, old, k.old_classes, 2.0).backward();
  EXPECT_FALSE(old.grad().defined());
}

TEST(LwfDistillation, GroupsAreSummedEachWithItsOwnSoftmax) {
  KdCase k;
  const auto g0 = torch::tensor({true, false, false}), g1 = torch::tensor({false, true, true});
  // A group of one class has a softmax of 1 in both models: zero.
  EXPECT_NEAR(distillation_loss(k.new_logits, k.old_logits, g0, 2.0).item<double>(), 0.0, 1e-12);
  const double g1_value = distillation_loss(k.new_logits, k.old_logits, g1, 2.0).item<double>();
  EXPECT_GT(g1_value, 0.0);
  EXPECT_NEAR(grouped_distillation_loss(k.new_logits, k.old_logits, {g0, g1}, 2.0).item<double>(), g1_value, 1e-12);
  EXPECT_EQ(grouped_distillation_loss(k.new_logits, k.old_logits, {}, 2.0).item<double>(), 0.0);
}

// ---------------------------------------------------------------------------
// Behaviour in a short run: two tasks of two synthetic classes, a small CNN
// (with BatchNorm), the trainer's order of calls reproduced by hand.

class RegularizationRun : public ::testing::Test {
 protected:
  // The run built by the RunBuilder, as the tools build one (a narrower small CNN).
  RegularizationRun()
      : run_config_(Config::from_string(
            "[method]\nname = \"sft\"\n[model]\nwidth = 4\nhidden = 16\n[checkpoint]\nenabled = false\n", "test.toml")),
        run_(RunBuilder(run_config_, run_dir_.path())
                 .set_data(std::make_unique<SplitSemiTasks>(data_options(), testing::synthetic_splits(4, 10, 1, 8), 0))
                 .finish()),
        tasks_(dynamic_cast<SplitSemiTasks&>(*run_->data)),
        context_(run_->method->context()) {
    tasks_.set_load_unlabeled(false);
    context_.seed = 5;
    context_.mask_train_logits = false;  // tests that want the task mask set it
  }

  std::shared_ptr<Backbone> make_backbone() const { return context_.make_backbone(); }

  static SplitSemiOptions data_options() {
    SplitSemiOptions o;
    o.split.num_tasks = 2;
    o.split.labels_per_class = {3};
    o.batch_size = 4;
    o.uratio = 1;
    return o;
  }

  std::unique_ptr<Method> make(const std::string& name, const std::string& options = "") {
    auto config = Config::from_string("[method]\n" + options, "method.toml");
    auto method = MethodRegistry::get().at(name)(config.section("method"));
    method->attach(context_);
    return method;
  }

  static RunState at_task(int task) {
    RunState s;
    s.num_tasks = 2;
    s.task = task;
    return s;
  }

  torch::Tensor total_loss(Method& method, int task, int64_t iter) {
    auto batch = tasks_.train_batch(task, iter);
    method.model()->train();
    const auto terms = method.step(batch, at_task(task));
    torch::Tensor total = terms.front().second;
    for (size_t i = 1; i < terms.size(); ++i) total = total + terms[i].second;
    return total;
  }

  static double term(const LossTerms& terms, const std::string& name) {
    for (const auto& [n, v] : terms)
      if (n == name) return v.item<double>();
    ADD_FAILURE() << "no loss term " << name;
    return std::nan("");
  }

  // A method's state as a checkpoint holds it, and back.
  static std::string save_state_bytes(Stateful& from) { return StateVisitor::to_bytes(from); }
  static void load_state_bytes(Stateful& into, const std::string& bytes) {
    StateVisitor::from_bytes(into, bytes, torch::kCPU);
  }
  static void state_round_trip(Stateful& from, Stateful& into) { load_state_bytes(into, save_state_bytes(from)); }

  static std::vector<torch::Tensor> snapshot(Classifier& model) { return detached_copies(model->parameters()); }

  static void shift_parameters(Classifier& model, double by) {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(by);
  }

  Config run_config_;
  testing::TempDir run_dir_;
  std::unique_ptr<sscl::Run> run_;
  SplitSemiTasks& tasks_;
  MethodContext context_;
};

TEST_F(RegularizationRun, SiAccumulatesTheOptimizersRealStepsWithMomentumAndWeightDecay) {
  auto method = make("si", "c = 0.5\nxi = 1.0\n");
  auto& si = dynamic_cast<Si&>(*method);
  auto& model = si.model();
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(1e-3));
  const auto start = snapshot(model);
  auto expected = zeros_like_all(start);
  auto reference_rule = zeros_like_all(start);  // lr * g^2
  si.before_task(at_task(0));
  for (int64_t it = 0; it < 5; ++it) {
    const auto loss = total_loss(si, 0, it);
    sgd.zero_grad();
    loss.backward();
    si.after_backward(at_task(0));
    const auto before = snapshot(model);
    std::vector<torch::Tensor> grads;
    for (auto& p : model->parameters()) grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    sgd.step();
    si.after_iter(at_task(0));
    const auto after = snapshot(model);
    for (size_t k = 0; k < expected.size(); ++k) {
      expected[k] -= grads[k] * (after[k] - before[k]);
      reference_rule[k] += 0.1 * grads[k].pow(2);
    }
  }
  ASSERT_EQ(si.path_integral().size(), expected.size());
  double diff_to_reference = 0;
  for (size_t k = 0; k < expected.size(); ++k) {
    EXPECT_TRUE(torch::allclose(si.path_integral()[k], expected[k], 1e-5, 1e-9)) << "parameter " << k;
    diff_to_reference += (expected[k] - reference_rule[k]).abs().sum().item<double>();
  }
  EXPECT_GT(diff_to_reference, 1e-4);  // with momentum the real-change rule is not lr * g^2

  // Task end: Omega = max(0, omega / ((theta - theta_start)^2 + xi)), theta* = theta, omega reset.
  const auto end = snapshot(model);
  si.after_task(at_task(0));
  ASSERT_EQ(si.importance().size(), expected.size());
  double total_importance = 0;
  for (size_t k = 0; k < expected.size(); ++k) {
    const auto want = (expected[k] / ((end[k] - start[k]).pow(2) + 1.0)).clamp_min(0.0);
    EXPECT_TRUE(torch::allclose(si.importance()[k], want, 1e-5, 1e-9)) << "parameter " << k;
    EXPECT_TRUE(torch::equal(si.anchor()[k], end[k]));
    EXPECT_EQ(si.path_integral()[k].abs().sum().item<double>(), 0.0);
    total_importance += si.importance()[k].sum().item<double>();
  }
  EXPECT_GT(total_importance, 0.0);

  // Penalty: zero at the anchor; c * sum Omega * 0.01^2 after shifting every parameter by 0.01.
  EXPECT_EQ(term(si.step(tasks_.train_batch(1, 0), at_task(1)), "penalty"), 0.0);
  shift_parameters(model, 0.01);
  EXPECT_NEAR(term(si.step(tasks_.train_batch(1, 0), at_task(1)), "penalty"), 0.5 * 1e-4 * total_importance,
              1e-6 * total_importance);
}

TEST_F(RegularizationRun, SiInALaterTaskIntegratesTheTaskLossGradientOnly) {
  auto method = make("si", "c = 0.5\n");
  auto& si = dynamic_cast<Si&>(*method);
  auto& model = si.model();
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  for (int task = 0; task < 2; ++task) {
    si.before_task(at_task(task));
    auto expected = zeros_like_all(snapshot(model));
    for (int64_t it = 0; it < 3; ++it) {
      if (task == 1 && it == 0) shift_parameters(model, 0.05);  // away from theta*: the penalty has a gradient
      const auto loss = total_loss(si, task, it);
      sgd.zero_grad();
      loss.backward();
      si.after_backward(at_task(task));
      const auto before = snapshot(model);
      std::vector<torch::Tensor> grads;
      const auto params = model->parameters();
      for (size_t k = 0; k < params.size(); ++k) {
        auto g = params[k].grad().defined() ? params[k].grad().clone() : torch::zeros_like(params[k]);
        if (task == 1) g = si_task_gradient(g, si.importance()[k], before[k], si.anchor()[k], 0.5);
        grads.push_back(g);
      }
      sgd.step();
      si.after_iter(at_task(task));
      const auto after = snapshot(model);
      for (size_t k = 0; k < expected.size(); ++k) expected[k] -= grads[k] * (after[k] - before[k]);
    }
    for (size_t k = 0; k < expected.size(); ++k)
      EXPECT_TRUE(torch::allclose(si.path_integral()[k], expected[k], 1e-5, 1e-9))
          << "task " << task << " parameter " << k;
    si.after_task(at_task(task));
  }
}

TEST_F(RegularizationRun, SiStateSurvivesSaveAndLoad) {
  auto method = make("si");
  auto& si = dynamic_cast<Si&>(*method);
  torch::optim::SGD sgd(si.model()->parameters(), torch::optim::SGDOptions(0.1));
  si.before_task(at_task(0));
  for (int64_t it = 0; it < 2; ++it) {
    const auto loss = total_loss(si, 0, it);
    sgd.zero_grad();
    loss.backward();
    si.after_backward(at_task(0));
    sgd.step();
    si.after_iter(at_task(0));
  }
  si.after_task(at_task(0));
  si.before_task(at_task(1));
  auto restored_method = make("si");
  auto& restored = dynamic_cast<Si&>(*restored_method);
  state_round_trip(si, restored);
  ASSERT_EQ(restored.importance().size(), si.importance().size());
  for (size_t k = 0; k < si.importance().size(); ++k) {
    EXPECT_TRUE(torch::equal(restored.importance()[k], si.importance()[k]));
    EXPECT_TRUE(torch::equal(restored.anchor()[k], si.anchor()[k]));
    EXPECT_TRUE(torch::equal(restored.path_integral()[k], si.path_integral()[k]));
  }
  EXPECT_EQ(restored.stats(), si.stats());
}

TEST_F(RegularizationRun, OewcPenaltyIsZeroAtTheAnchorAndLambdaFisherDriftAway) {
  auto method = make("oewc", "lambda = 10.0\nfisher = \"expected\"\n");
  auto& ewc = dynamic_cast<OnlineEwc&>(*method);
  auto& model = ewc.model();
  EXPECT_EQ(term(ewc.step(tasks_.train_batch(0, 0), at_task(0)), "penalty"), 0.0);  // no Fisher yet
  model->train();
  ewc.after_task(at_task(0));
  EXPECT_TRUE(model->is_training());       // the eval-mode Fisher pass restores the mode
  EXPECT_EQ(ewc.last_fisher_images(), 6);  // every labeled image: 2 classes x 3
  ASSERT_EQ(ewc.fisher().size(), model->parameters().size());
  double total_fisher = 0;
  for (const auto& f : ewc.fisher()) {
    EXPECT_GE(f.min().item<double>(), 0.0);
    total_fisher += f.sum().item<double>();
  }
  EXPECT_GT(total_fisher, 0.0);
  EXPECT_EQ(term(ewc.step(tasks_.train_batch(1, 0), at_task(1)), "penalty"), 0.0);
  shift_parameters(model, 0.01);
  EXPECT_NEAR(term(ewc.step(tasks_.train_batch(1, 0), at_task(1)), "penalty"), 10.0 * 1e-4 * total_fisher,
              1e-6 * total_fisher);
}

TEST_F(RegularizationRun, OewcFisherMatchesItsDefinitionAndAccumulatesOnline) {
  // With the empirical estimator the task's Fisher is deterministic: recompute it
  // from the task's labeled images (plain view, eval mode), then check
  // F = gamma F_0 + F_1 after the second task.
  auto method = make("oewc", "gamma = 0.5\nfisher = \"empirical\"\n");
  auto& ewc = dynamic_cast<OnlineEwc&>(*method);
  auto& model = ewc.model();
  auto fisher_of = [&](int task) {
    const auto set = tasks_.labeled_set(task);
    const auto images = tasks_.views(tasks_.raw_images(set.ids), View::kPlain, 0);
    model->eval();
    Rng rng(0);
    auto f = diagonal_fisher([&](const torch::Tensor& x) { return model->forward(x); }, model->parameters(), images,
                             set.labels, FisherEstimator::kEmpirical, rng);
    model->train();
    return f;
  };
  const auto f0 = fisher_of(0);
  ewc.after_task(at_task(0));
  shift_parameters(model, 0.02);
  const auto f1 = fisher_of(1);
  ewc.after_task(at_task(1));
  for (size_t k = 0; k < f0.size(); ++k)
    EXPECT_TRUE(torch::allclose(ewc.fisher()[k], 0.5 * f0[k] + f1[k], 1e-5, 1e-10)) << "parameter " << k;
}

TEST_F(RegularizationRun, OewcFisherSamplesAreCappedAndReproducible) {
  auto a = make("oewc", "fisher_samples = 4\n");
  auto b = make("oewc", "fisher_samples = 4\n");
  a->after_task(at_task(0));
  b->after_task(at_task(0));
  auto& ea = dynamic_cast<OnlineEwc&>(*a);
  auto& eb = dynamic_cast<OnlineEwc&>(*b);
  EXPECT_EQ(ea.last_fisher_images(), 4);
  for (size_t k = 0; k < ea.fisher().size(); ++k) EXPECT_TRUE(torch::equal(ea.fisher()[k], eb.fisher()[k]));
  bool has_fisher_samples = false;
  for (const auto& [key, value] : ea.stats())
    if (key == "fisher_samples") {
      has_fisher_samples = true;
      EXPECT_EQ(value, 4.0);
    }
  EXPECT_TRUE(has_fisher_samples);

  auto c = make("oewc", "fisher_samples = 4\n");
  state_round_trip(ea, *c);
  auto& ec = dynamic_cast<OnlineEwc&>(*c);
  for (size_t k = 0; k < ea.fisher().size(); ++k) {
    EXPECT_TRUE(torch::equal(ec.fisher()[k], ea.fisher()[k]));
    EXPECT_TRUE(torch::equal(ec.anchor()[k], ea.anchor()[k]));
  }
  EXPECT_EQ(ec.last_fisher_images(), 4);
}

TEST_F(RegularizationRun, OewcRejectsBadOptions) {
  EXPECT_THROW(make("oewc", "lambda = -1.0\n"), ConfigError);
  EXPECT_THROW(make("oewc", "fisher = \"exact\"\n"), ConfigError);
  EXPECT_THROW(make("oewc", "fisher_samples = -2\n"), ConfigError);
  EXPECT_THROW(make("si", "xi = 0.0\n"), ConfigError);
  EXPECT_THROW(make("lwf", "temperature = 0.0\n"), ConfigError);
}

TEST_F(RegularizationRun, LwfTeacherIsFrozenAndUnchangedByTraining) {
  auto method = make("lwf");
  auto& lwf = dynamic_cast<Lwf&>(*method);
  auto& model = lwf.model();
  EXPECT_FALSE(lwf.teacher());
  EXPECT_EQ(term(lwf.step(tasks_.train_batch(0, 0), at_task(0)), "kd"), 0.0);  // nothing to distil in task 0
  lwf.after_task(at_task(0));
  ASSERT_TRUE(lwf.teacher());
  auto& teacher = lwf.teacher();
  EXPECT_FALSE(teacher->is_training());
  for (const auto& p : teacher->parameters()) EXPECT_FALSE(p.requires_grad());
  const auto teacher_before = snapshot(teacher);
  const auto model_before = snapshot(model);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  double kd_sum = 0;
  for (int64_t it = 0; it < 3; ++it) {
    auto batch = tasks_.train_batch(1, it);
    model->train();
    const auto terms = lwf.step(batch, at_task(1));
    kd_sum += term(terms, "kd");
    sgd.zero_grad();
    (terms[0].second + terms[1].second).backward();
    sgd.step();
  }
  EXPECT_GT(kd_sum, 0.0);  // the model moved away from the teacher after the first step
  const auto teacher_after = snapshot(teacher);
  const auto model_after = snapshot(model);
  bool model_moved = false;
  for (size_t k = 0; k < teacher_before.size(); ++k) {
    EXPECT_TRUE(torch::equal(teacher_after[k], teacher_before[k])) << "teacher parameter " << k;
    EXPECT_FALSE(teacher->parameters()[k].grad().defined());
    model_moved = model_moved || !torch::equal(model_after[k], model_before[k]);
  }
  EXPECT_TRUE(model_moved);
  bool has_teacher_bytes = false;
  for (const auto& [key, value] : lwf.stats()) {
    if (key != "teacher_bytes") continue;
    has_teacher_bytes = true;
    EXPECT_GT(value, 0.0);
  }
  EXPECT_TRUE(has_teacher_bytes);
}

TEST_F(RegularizationRun, LwfDistilsTheOldTasksOwnSoftmaxesUnderTheTaskMask) {
  // Three tasks of classes {0}, {1, 2}, {3}: old groups while training task 2.
  context_.task_classes = {{0}, {1, 2}, {3}};
  context_.mask_train_logits = false;
  auto joint = make("lwf");
  const auto joint_groups = dynamic_cast<Lwf&>(*joint).old_class_groups(2);
  ASSERT_EQ(joint_groups.size(), 1u);
  EXPECT_TRUE(torch::equal(joint_groups[0], torch::tensor({true, true, true, false})));
  context_.mask_train_logits = true;
  auto per_task = make("lwf");
  const auto groups = dynamic_cast<Lwf&>(*per_task).old_class_groups(2);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_TRUE(torch::equal(groups[0], torch::tensor({true, false, false, false})));
  EXPECT_TRUE(torch::equal(groups[1], torch::tensor({false, true, true, false})));
  EXPECT_TRUE(dynamic_cast<Lwf&>(*per_task).old_class_groups(0).empty());
}

TEST_F(RegularizationRun, LwfTeacherSurvivesSaveAndLoad) {
  auto method = make("lwf");
  auto& lwf = dynamic_cast<Lwf&>(*method);
  lwf.after_task(at_task(0));
  const std::string saved = save_state_bytes(lwf);
  shift_parameters(lwf.model(), 0.1);  // the restored teacher must come from the archive, not the model
  auto restored_method = make("lwf");
  auto& restored = dynamic_cast<Lwf&>(*restored_method);
  ASSERT_FALSE(restored.teacher());
  load_state_bytes(restored, saved);
  ASSERT_TRUE(restored.teacher());
  const auto images = tasks_.eval_batch(0, 0, 4).images;
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(restored.teacher()->forward(images), lwf.teacher()->forward(images)));
}

}  // namespace
}  // namespace sscl
