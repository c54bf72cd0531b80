// tools/pretrain as a user runs it: SimSiam on a tiny Fashion-MNIST, the
// model.pt it writes read back by model.pretrained (every backbone tensor
// loaded, only the head missing), the same seed giving the same weights, and
// bad input refused before the directory exists.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/nn/state_dict_file.h"
#include "tests/tools/run_binary.h"

namespace sscl {
namespace {

using testing::TempDir;

const char* kConfig = "configs/sft/sft_small_cnn_fmnist5.toml";

std::string small_pretrain(const TempDir& dir, const std::filesystem::path& out) {
  return testing::config_path(kConfig) + " --work-dir '" + out.string() + "' --cfg-options data.root='" +
         (dir / "data").string() +
         "' train.threads=1 model.width=8 pretrain.iters=6 pretrain.batch_size=16 pretrain.proj_dim=16 "
         "pretrain.pred_dim=4 pretrain.log_interval=2";
}

testing::Process run_pretrain(const std::string& args, const TempDir& scratch) {
  return testing::run_binary(SSCL_PRETRAIN_BINARY, args, scratch);
}

TEST(PretrainEndToEnd, WritesBackboneWeightsThatTrainingLoads) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 8, 2);
  auto p = run_pretrain(small_pretrain(dir, dir / "pre"), dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const auto results = nlohmann::json::parse(testing::read_file(dir / "pre" / "pretrain.json"));
  EXPECT_EQ(results["method"], "simsiam");
  EXPECT_EQ(results["pool_images"], 80);  // 8 per class, 10 classes, over the 5 tasks
  ASSERT_EQ(results["loss"]["curve"].size(), 3u);
  int64_t iter = 0;
  for (const auto& point : results["loss"]["curve"]) {
    EXPECT_EQ(point["iter"].get<int64_t>(), iter += 2);  // every log_interval = 2 iterations
    // The negative cosine of two vectors: in [-1, 1].
    EXPECT_GE(point["loss"].get<double>(), -1.0);
    EXPECT_LE(point["loss"].get<double>(), 1.0);
    EXPECT_GT(point["z_std"].get<double>(), 0.0);
  }
  const std::string log = testing::read_file(dir / "pre" / "pretrain.log");
  EXPECT_NE(log.find("SimSiam on 80 training images"), std::string::npos) << log;
  EXPECT_NE(log.find("iter 6/6: loss"), std::string::npos) << log;

  const auto file = read_state_dict_file(dir / "pre" / "model.pt");
  EXPECT_EQ(file.format, "torch.save state_dict");
  ASSERT_EQ(static_cast<int64_t>(file.tensors.size()), results["model"]["tensors"].get<int64_t>());
  for (const auto& [name, tensor] : file.tensors) EXPECT_EQ(name.rfind("backbone.", 0), 0u) << name;

  // The same seed gives the same weights; the first task alone is a smaller pool.
  p = run_pretrain(small_pretrain(dir, dir / "again"), dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const auto again = read_state_dict_file(dir / "again" / "model.pt");
  ASSERT_EQ(again.tensors.size(), file.tensors.size());
  for (size_t i = 0; i < file.tensors.size(); ++i)
    EXPECT_TRUE(file.tensors[i].second.equal(again.tensors[i].second)) << file.tensors[i].first;
  p = run_pretrain(small_pretrain(dir, dir / "first") + " pretrain.images=first_task pretrain.iters=1", dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(nlohmann::json::parse(testing::read_file(dir / "first" / "pretrain.json"))["pool_images"], 16);

  // tools/train from those weights, with the config's [pretrain] keys left in.
  p = testing::run_train(testing::config_path(kConfig) + " --work-dir '" + (dir / "train").string() +
                             "' --cfg-options data.root='" + (dir / "data").string() +
                             "' train.threads=1 model.width=8 train.iters_per_task=2 checkpoint.enabled=false "
                             "pretrain.iters=6 model.pretrained='" +
                             (dir / "pre" / "model.pt").string() + "'",
                         dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const auto trained = nlohmann::json::parse(testing::read_file(dir / "train" / "results.json"));
  const auto& loaded = trained["pretrained"];
  EXPECT_EQ(loaded["loaded_tensors"].get<size_t>(), file.tensors.size());
  EXPECT_EQ(loaded["unexpected"].size(), 0u);
  EXPECT_EQ(loaded["skipped"].size(), 0u);
  for (const auto& name : loaded["missing"]) EXPECT_EQ(name.get<std::string>().rfind("head.", 0), 0u) << name;
}

TEST(PretrainErrors, BadInputNamesTheKeyAndWritesNothing) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 8, 1);
  const auto out = dir / "pre";
  testing::expect_refused(run_pretrain(small_pretrain(dir, out) + " pretrain.iters=0", dir),
                          "config key 'pretrain.iters'", out);
  testing::expect_refused(run_pretrain(small_pretrain(dir, out) + " pretrain.itres=5", dir), "pretrain.itres", out);
  testing::expect_refused(run_pretrain(small_pretrain(dir, out) + " pretrain.batch_size=100", dir),
                          "is more than the 80 images to pretrain on", out);
  testing::expect_refused(run_pretrain(small_pretrain(dir, out) + " pretrain.augment.crop_scale=[0.5,0.2]", dir),
                          "config key 'pretrain.augment.crop_scale'", out);
  testing::expect_refused(run_pretrain(small_pretrain(dir, out) + " model.freeze='backbone'", dir),
                          "config key 'model.freeze'", out);
  // tools/train checks the section's keys too.
  const auto run =
      testing::run_train(testing::config_path(kConfig) + " --work-dir '" + out.string() +
                             "' --cfg-options data.root='" + (dir / "data").string() + "' pretrain.iters=-1",
                         dir);
  testing::expect_refused(run, "config key 'pretrain.iters'", out);
}

}  // namespace
}  // namespace sscl
