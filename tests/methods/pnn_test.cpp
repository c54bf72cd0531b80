// PNN: backbones' stages, the lateral adapter's maths, the wiring of columns,
// frozen old columns, parameter counts, checkpoints and the scenario restriction.
#include "methods/continual/pnn.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/method.h"
#include "core/nn/staged_backbone.h"

namespace sscl {
namespace {

std::shared_ptr<Backbone> backbone(const std::string& name, const InputShape& shape, const std::string& options) {
  auto config = Config::from_string("[model]\n" + options, "model.toml");
  return BackboneRegistry::get().at(name)(config.section("model"), shape);
}

// Overwrites the parameter `name` of `module` with `value` (same shape).
void set(torch::nn::Module& module, const std::string& name, const torch::Tensor& value) {
  torch::NoGradGuard no_grad;
  auto params = module.named_parameters();
  ASSERT_TRUE(params.contains(name)) << name;
  ASSERT_EQ(params[name].sizes(), value.sizes()) << name;
  params[name].copy_(value);
}

std::map<std::string, torch::Tensor> snapshot(torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : module.named_parameters()) out[p.key()] = p.value().detach().clone();
  for (const auto& b : module.named_buffers()) out["buffer:" + b.key()] = b.value().clone();
  return out;
}

const torch::Tensor& eye2() {
  static const auto eye = torch::eye(2);
  return eye;
}

TEST(PnnStages, EveryStagedBackboneComposesToItsForward) {
  struct Case {
    std::string name, options;
    InputShape shape;
  };
  const std::vector<Case> cases = {{"mlp", "hidden = 8\n", {1, 6, 6}},
                                   {"small_cnn", "width = 4\nhidden = 8\n", {1, 12, 12}},
                                   {"resnet18", "base_width = 4\n", {3, 16, 16}},
                                   {"resnet34", "base_width = 4\n", {3, 16, 16}},
                                   {"resnet50", "base_width = 4\n", {3, 16, 16}},
                                   {"reduced_resnet18", "base_width = 4\n", {3, 16, 16}}};
  torch::manual_seed(0);
  for (const auto& c : cases) {
    auto net = backbone(c.name, c.shape, c.options);
    net->eval();
    auto* staged = as_staged(*net);
    ASSERT_NE(staged, nullptr) << c.name;
    const auto images = torch::randn({2, c.shape.channels, c.shape.height, c.shape.width});
    auto x = images;
    for (int64_t s = 0; s < staged->num_stages(); ++s) {
      x = staged->forward_stage(s, x);
      const auto shape = staged->stage_shape(s);
      EXPECT_EQ(x.size(1), shape.channels) << c.name << " stage " << s;
      EXPECT_EQ(x.dim(), shape.spatial ? 4 : 2) << c.name << " stage " << s;
    }
    EXPECT_TRUE(torch::equal(x, net->forward(images))) << c.name;
    EXPECT_EQ(x.size(1), net->feature_dim()) << c.name;
  }
  // Stages of the ResNet-18: stem 64, layers 64, 128, 256, pooled 512.
  auto resnet = backbone("resnet18", {3, 32, 32}, "");
  auto* staged = as_staged(*resnet);
  ASSERT_EQ(staged->num_stages(), 5);
  EXPECT_EQ(staged->stage_shape(3).channels, 256);
  EXPECT_FALSE(staged->stage_shape(4).spatial);
}

TEST(PnnAdapter, HandComputedOnVectorsAndOnMaps) {
  // alpha 0.5, V = [[1, -1], [2, 0]], b_V = [0, -1], U = [[1, 0], [1, 1]], h = [2, 4]:
  // alpha h = [1, 2]; V . + b = [1 - 2, 2 - 1] = [-1, 1]; relu [0, 1]; U . = [0, 1].
  LateralAdapter adapter(1, 2, 0.1);
  set(*adapter, "alpha", torch::tensor(0.5));
  set(*adapter, "v_weight", torch::tensor({{1.0, -1.0}, {2.0, 0.0}}).to(torch::kFloat));
  set(*adapter, "v_bias", torch::tensor({0.0f, -1.0f}));
  set(*adapter, "u_weight", torch::tensor({{1.0, 0.0}, {1.0, 1.0}}).to(torch::kFloat));
  const auto out = adapter->forward({torch::tensor({{2.0f, 4.0f}})});
  EXPECT_TRUE(torch::allclose(out, torch::tensor({{0.0f, 1.0f}})));
  // The same as a 1x1 convolution at every position of a [1, 2, 2, 1] map: position 0
  // holds h = [2, 4] (as above), position 1 h = [4, 0]: alpha h = [2, 0],
  // V . + b = [2, 4 - 1] = [2, 3], relu [2, 3], U . = [2, 5].
  const auto map = torch::tensor({2.0f, 4.0f, 4.0f, 0.0f}).view({1, 2, 2, 1});  // channel-major
  const auto out_map = adapter->forward({map});
  ASSERT_EQ(out_map.sizes(), (std::vector<int64_t>{1, 2, 2, 1}));
  EXPECT_TRUE(torch::allclose(out_map.view({2, 2}).t(), torch::tensor({{0.0f, 1.0f}, {2.0f, 5.0f}})));
}

TEST(PnnAdapter, ConcatenatesTheEarlierColumnsInOrder) {
  // Two earlier columns of 1 channel: V = [1, -1], b 0, U = [[2]], alpha 1:
  // h = ([3], [1]) -> relu(3 - 1) * 2 = 4; h = ([3], [5]) -> relu(-2) * 2 = 0.
  LateralAdapter adapter(2, 1, 0.1);
  set(*adapter, "alpha", torch::tensor(1.0f));
  set(*adapter, "v_weight", torch::tensor({{1.0f, -1.0f}}));
  set(*adapter, "v_bias", torch::zeros({1}));
  set(*adapter, "u_weight", torch::tensor({{2.0f}}));
  EXPECT_FLOAT_EQ(adapter->forward({torch::tensor({{3.0f}}), torch::tensor({{1.0f}})}).item<float>(), 4.0f);
  EXPECT_FLOAT_EQ(adapter->forward({torch::tensor({{3.0f}}), torch::tensor({{5.0f}})}).item<float>(), 0.0f);
  EXPECT_EQ(adapter->parameters().size(), 4u);  // alpha, V, b_V, U
  EXPECT_EQ(adapter->alpha.dim(), 0);
}

// Two columns of an MLP of width 2 on 2-pixel images, classes {0, 1} and {2, 3}.
struct TinyMlpNet {
  Classifier model{nullptr};
  std::unique_ptr<ProgressiveNet> net;
  TinyMlpNet() {
    const InputShape shape{1, 1, 2};
    model = Classifier(backbone("mlp", shape, "hidden = 2\n"), 4);
    net = std::make_unique<ProgressiveNet>(model, std::vector<std::vector<int64_t>>{{0, 1}, {2, 3}}, torch::kCPU, 0.1);
    net->add_column(backbone("mlp", shape, "hidden = 2\n"));
  }
};

TEST(PnnNet, TwoColumnMlpOfWidthTwoByHand) {
  TinyMlpNet t;
  auto& col1 = *t.net->column(1);
  for (const std::string layer : {"backbone.layers.0.", "backbone.layers.1."}) {
    set(*t.model, layer + "weight", eye2());
    set(*t.model, layer + "bias", torch::zeros({2}));
    set(col1, layer + "weight", eye2());
    set(col1, layer + "bias", torch::zeros({2}));
  }
  // The model's head: classes 0, 1 read the features; the rows of classes 2, 3 (9s)
  // must not be used, column 1 answers for them.
  set(*t.model, "head.weight", torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}, {9.0f, 9.0f}, {9.0f, 9.0f}}));
  set(*t.model, "head.bias", torch::zeros({4}));
  set(col1, "adapters.0.alpha", torch::tensor(0.5f));
  set(col1, "adapters.0.v_weight", eye2());
  set(col1, "adapters.0.v_bias", torch::tensor({0.0f, -1.0f}));
  set(col1, "adapters.0.u_weight", torch::tensor({{1.0f, 1.0f}, {0.0f, 2.0f}}));
  set(col1, "adapters.1.alpha", torch::tensor(1.0f));
  set(col1, "adapters.1.v_weight", eye2());
  set(col1, "adapters.1.v_bias", torch::zeros({2}));
  set(col1, "adapters.1.u_weight", torch::tensor({{0.0f, 1.0f}, {1.0f, 0.0f}}));
  set(col1, "head.weight", torch::tensor({{1.0f, 0.0f}, {1.0f, -1.0f}}));
  set(col1, "head.bias", torch::tensor({0.0f, 1.0f}));
  // x = [1, 2]. Column 0: h0 = h1 = [1, 2]; logits of classes 0, 1 = [1, 2].
  // Column 1: h0' = [1, 2]; adapter 0 on h0: 0.5 h0 = [0.5, 1], V . + b = [0.5, 0],
  //   relu [0.5, 0], U . = [0.5, 0]; stage 1 input [1.5, 2]; h1' = [1.5, 2].
  //   Adapter 1 on h1: relu([1, 2]) = [1, 2], U . = [2, 1]; head input [3.5, 3];
  //   head: [3.5, 3.5 - 3 + 1] = [3.5, 1.5].
  const auto x = torch::tensor({1.0f, 2.0f}).view({1, 1, 1, 2});
  t.net->set_modes(-1);
  EXPECT_TRUE(torch::allclose(t.net->task_logits(x, 0), torch::tensor({{1.0f, 2.0f}})));
  EXPECT_TRUE(torch::allclose(t.net->task_logits(x, 1), torch::tensor({{3.5f, 1.5f}})));
  EXPECT_TRUE(torch::allclose(t.net->logits(x), torch::tensor({{1.0f, 2.0f, 3.5f, 1.5f}})));
  // model()->forward stays column 0's classifier.
  EXPECT_TRUE(torch::allclose(t.model->forward(x).narrow(1, 0, 2), torch::tensor({{1.0f, 2.0f}})));
}

TEST(PnnNet, ForwardShapesOfTwoAndThreeColumns) {
  const InputShape shape{1, 12, 12};
  const std::string options = "width = 4\nhidden = 8\n";
  Classifier model(backbone("small_cnn", shape, options), 6);
  ProgressiveNet net(model, {{0, 1}, {2, 3, 4}, {5}}, torch::kCPU, 0.1);
  const auto images = torch::randn({5, 1, 12, 12});
  net.add_column(backbone("small_cnn", shape, options));
  net.set_modes(1);
  EXPECT_EQ(net.task_logits(images, 1).sizes(), (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(net.logits(images).sizes(), (std::vector<int64_t>{5, 6}));
  net.add_column(backbone("small_cnn", shape, options));
  EXPECT_EQ(net.num_columns(), 3);
  net.set_modes(2);
  EXPECT_EQ(net.task_logits(images, 0).sizes(), (std::vector<int64_t>{5, 2}));
  EXPECT_EQ(net.task_logits(images, 2).sizes(), (std::vector<int64_t>{5, 1}));
  const auto all = net.logits(images, -7.0);
  EXPECT_EQ(all.sizes(), (std::vector<int64_t>{5, 6}));
  // Column 2's adapters read both earlier columns: V has 2 x the stage's channels.
  EXPECT_EQ(net.column(2)->adapter(0)->v_weight.sizes(), (std::vector<int64_t>{4, 8}));
  EXPECT_THROW(net.add_column(backbone("small_cnn", shape, options)), Error);  // 3 tasks only
}

TEST(PnnNet, LaterColumnsReadEarlierOnesAndNeverTheReverse) {
  TinyMlpNet t;
  // Adapters' hidden units active (V's bias 1 on inputs >= 0), so that the laterals carry signal.
  set(*t.net->column(1), "adapters.0.v_bias", torch::ones({2}));
  set(*t.net->column(1), "adapters.1.v_bias", torch::ones({2}));
  t.net->set_modes(-1);
  torch::manual_seed(1);
  const auto x = torch::rand({4, 1, 1, 2}) + 0.5;
  const auto col0 = t.net->task_logits(x, 0);
  const auto col1 = t.net->task_logits(x, 1);
  {
    torch::NoGradGuard no_grad;  // column 1's weights move: column 0 does not notice
    for (auto& p : t.net->column_parameters(1)) p.add_(0.5);
  }
  EXPECT_TRUE(torch::equal(t.net->task_logits(x, 0), col0));
  EXPECT_TRUE(torch::equal(t.net->logits(x).narrow(1, 0, 2), col0));
  const auto col1_moved = t.net->task_logits(x, 1);
  EXPECT_FALSE(torch::allclose(col1_moved, col1));
  {
    torch::NoGradGuard no_grad;  // column 0's layers move: column 1 reads them through its laterals
    for (auto& p : t.model->backbone().parameters()) p.add_(0.3);
  }
  EXPECT_FALSE(torch::allclose(t.net->task_logits(x, 1), col1_moved));
}

TEST(PnnNet, ParameterCountOfATwoColumnMlpByHand) {
  // Input 2x2 (4 values), 2 hidden layers of 3, classes {0, 1} and {2, 3}.
  //   column 0 = the model: 4*3+3 + 3*3+3 + head over 4 classes 3*4+4      = 15 + 12 + 16 = 43
  //   column 1: backbone 15 + 12; 2 adapters of alpha 1 + V 3*3+3 + U 3*3 = 2 x 22;
  //             head over 2 classes 3*2+2                                  = 27 + 44 + 8 = 79
  const InputShape shape{1, 2, 2};
  Classifier model(backbone("mlp", shape, "hidden = 3\n"), 4);
  ProgressiveNet net(model, {{0, 1}, {2, 3}}, torch::kCPU, 0.1);
  net.add_column(backbone("mlp", shape, "hidden = 3\n"));
  EXPECT_EQ(net.parameter_count(0), 43);
  EXPECT_EQ(net.parameter_count(1), 79);
  EXPECT_EQ(net.adapter_parameter_count(0), 0);
  EXPECT_EQ(net.adapter_parameter_count(1), 44);
}

// The registered method on a small CNN (BN) with two tasks of two classes.
struct PnnRun {
  std::unique_ptr<Method> method;
  Classifier model{nullptr};
  InputShape shape{1, 12, 12};
  std::string options = "width = 4\nhidden = 8\n";
  explicit PnnRun(const std::string& model_options = "", const std::string& method_options = "") {
    auto config = Config::from_string("[method]\n" + method_options, "pnn.toml");
    method = MethodRegistry::get().at("pnn")(config.section("method"));
    if (!model_options.empty()) options = model_options;
    model = Classifier(backbone("small_cnn", shape, options), 4);
    MethodContext context;
    context.model = model;
    context.task_classes = {{0, 1}, {2, 3}};
    context.mask_train_logits = true;
    context.seed = 3;
    context.make_backbone = [this] { return backbone("small_cnn", shape, options); };
    method->attach(context);
  }
  void before_task(int task) {
    RunState state;
    state.task = task;
    method->before_task(state);
  }
  // `steps` SGD steps on task `task`, as the trainer runs them.
  void train(int task, int steps) {
    torch::optim::SGD sgd(method->trainable_parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    for (int i = 0; i < steps; ++i) {
      TrainBatch batch;
      batch.task = task;
      batch.labeled.images = torch::randn({6, 1, 12, 12});
      batch.labeled.labels = torch::tensor({0, 1, 0, 1, 1, 0}, torch::kLong) + 2 * task;
      method->model()->train();
      const auto terms = method->step(batch, RunState{});
      ASSERT_EQ(terms.size(), 1u);
      EXPECT_EQ(terms[0].first, "sup");
      ASSERT_TRUE(std::isfinite(terms[0].second.item<double>()));
      sgd.zero_grad();
      terms[0].second.backward();
      sgd.step();
    }
  }
  double stat(const std::string& key) const {
    for (const auto& [k, v] : method->stats())
      if (k == key) return v;
    ADD_FAILURE() << "no stat " << key;
    return -1;
  }
};

TEST(PnnMethod, OldColumnIsFrozenWhileTheNextTaskTrains) {
  torch::manual_seed(0);
  PnnRun run;
  run.before_task(0);
  EXPECT_TRUE(run.method->traits().fresh_optimizer_each_task);
  EXPECT_FALSE(run.method->traits().single_network);
  EXPECT_EQ(run.method->trainable_parameters().size(), run.model->parameters().size());
  run.train(0, 3);
  run.before_task(1);
  EXPECT_EQ(run.stat("columns"), 2);
  // Trainable: column 1 only (backbone, adapters, head); none of the model's tensors.
  const auto trainable = run.method->trainable_parameters();
  double trainable_count = 0;
  for (const auto& p : trainable) {
    trainable_count += static_cast<double>(p.numel());
    for (const auto& q : run.model->parameters()) EXPECT_FALSE(p.is_same(q));
  }
  EXPECT_EQ(trainable_count, run.stat("parameters_column_1"));
  for (const auto& p : run.model->parameters()) EXPECT_FALSE(p.requires_grad());
  const auto before = snapshot(*run.model);
  std::vector<torch::Tensor> trainable_before;
  for (const auto& p : trainable) trainable_before.push_back(p.detach().clone());
  run.train(1, 3);
  // Parameters and BN statistics of column 0 unchanged (BN in eval mode although the
  // trainer put the model in train mode), and no gradient reached them.
  const auto after = snapshot(*run.model);
  for (const auto& [name, value] : before) EXPECT_TRUE(torch::equal(value, after.at(name))) << name;
  for (const auto& p : run.model->parameters()) EXPECT_FALSE(p.grad().defined());
  EXPECT_FALSE(run.model->is_training());
  int moved = 0;
  for (size_t i = 0; i < trainable.size(); ++i) moved += !torch::equal(trainable[i], trainable_before[i]);
  EXPECT_GT(moved, static_cast<int>(trainable.size()) / 2);
}

TEST(PnnMethod, PredictGivesEveryTasksClassesFromItsColumn) {
  torch::manual_seed(0);
  PnnRun run;
  run.before_task(0);
  run.train(0, 2);
  run.before_task(1);
  run.train(1, 2);
  torch::NoGradGuard no_grad;
  run.model->eval();
  const auto images = torch::randn({3, 1, 12, 12});
  const auto logits = run.method->predict(images);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 4}));
  // Task 0's classes: the model itself (column 0).
  EXPECT_TRUE(torch::allclose(logits.narrow(1, 0, 2), run.model->forward(images).narrow(1, 0, 2)));
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
}

TEST(PnnMethod, StatsCountParametersPerColumn) {
  // small_cnn width 4, hidden 8 on 12x12: conv1 1*4*9 + bn 8, conv2 4*8*9 + bn 16,
  // fc 8*3*3*8 (no bias) + bn 16 = 36 + 8 + 288 + 16 + 576 + 16 = 940.
  // Column 0 = model: 940 + head 8*4+4 = 976. Column 1: 940 + head 8*2+2 = 958 +
  // adapters on the stage outputs of 4, 8, 8 channels: (1 + c*c+c + c*c) =
  // 37 + 137 + 137 = 311 -> 1269. Total 2245.
  PnnRun run;
  EXPECT_EQ(run.stat("columns"), 1);
  EXPECT_EQ(run.stat("parameters_total"), 976);
  run.before_task(1);
  EXPECT_EQ(run.stat("parameters_column_0"), 976);
  EXPECT_EQ(run.stat("parameters_column_1"), 1269);
  EXPECT_EQ(run.stat("parameters_adapters"), 311);
  EXPECT_EQ(run.stat("parameters_total"), 2245);
}

TEST(PnnMethod, ColumnsAreSeededAndRestoredFromACheckpoint) {
  torch::manual_seed(0);
  PnnRun a;
  a.before_task(1);
  a.train(1, 2);  // column 1 moves away from its seeded initialisation
  torch::serialize::OutputArchive out;
  StateVisitor::save(*a.method, out);
  std::stringstream stream;
  out.save_to(stream);

  PnnRun b;  // a different model: copy column 0 over, as the checkpoint's model would
  {
    torch::NoGradGuard no_grad;
    auto src = a.model->named_parameters();
    for (auto& p : b.model->named_parameters()) p.value().copy_(src[p.key()]);
    auto src_buffers = a.model->named_buffers();
    for (auto& p : b.model->named_buffers()) p.value().copy_(src_buffers[p.key()]);
  }
  PnnRun fresh;  // the same seed builds the same column 1 before training
  fresh.before_task(1);
  b.before_task(1);
  for (size_t i = 0; i < b.method->trainable_parameters().size(); ++i)
    EXPECT_TRUE(torch::equal(b.method->trainable_parameters()[i], fresh.method->trainable_parameters()[i]));

  PnnRun c;
  {
    torch::NoGradGuard no_grad;
    auto src = a.model->named_parameters();
    for (auto& p : c.model->named_parameters()) p.value().copy_(src[p.key()]);
    auto src_buffers = a.model->named_buffers();
    for (auto& p : c.model->named_buffers()) p.value().copy_(src_buffers[p.key()]);
  }
  torch::serialize::InputArchive in;
  in.load_from(stream);
  StateVisitor::load(*c.method, in, torch::kCPU);  // adds column 1 and reads it
  EXPECT_EQ(c.stat("columns"), 2);
  torch::NoGradGuard no_grad;
  const auto images = torch::randn({3, 1, 12, 12});
  EXPECT_TRUE(torch::equal(c.method->predict(images), a.method->predict(images)));
  EXPECT_FALSE(torch::equal(b.method->predict(images), a.method->predict(images)));
}

TEST(PnnMethod, SupportsTaskIlOnly) {
  PnnRun run;
  EXPECT_NO_THROW(ensure_supported(*run.method, Scenario::kTaskIL));
  EXPECT_THROW(ensure_supported(*run.method, Scenario::kClassIL), ConfigError);
}

// A backbone without stages.
class Flat : public Backbone {
 public:
  Flat() { fc_ = register_module("fc", torch::nn::Linear(4, 3)); }
  torch::Tensor forward(const torch::Tensor& images) override { return fc_(images.flatten(1)); }
  int64_t feature_dim() const override { return 3; }

 private:
  torch::nn::Linear fc_{nullptr};
};

TEST(PnnMethod, BackboneWithoutStagesIsAConfigErrorNamingModelBackbone) {
  auto config = Config::from_string("[method]\n", "pnn.toml");
  auto method = MethodRegistry::get().at("pnn")(config.section("method"));
  MethodContext context;
  context.model = Classifier(std::make_shared<Flat>(), 4);
  context.task_classes = {{0, 1}, {2, 3}};
  try {
    method->attach(context);
    FAIL() << "attach accepted a backbone without stages";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.backbone"), std::string::npos) << e.what();
  }
}

TEST(PnnMethod, RejectsANegativeAlphaInit) {
  auto config = Config::from_string("[method]\nalpha_init = -1.0\n", "pnn.toml");
  EXPECT_THROW(MethodRegistry::get().at("pnn")(config.section("method")), ConfigError);
}

}  // namespace
}  // namespace sscl
