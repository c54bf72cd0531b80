// Short real runs of the sscl_train binary on a tiny Fashion-MNIST-layout dataset.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/nn/state_dict_file.h"
#include "tests/tools/run_binary.h"

namespace sscl {
namespace {

using testing::TempDir;

const char* kConfig = "configs/fixmatch/fixmatch_small_cnn_fmnist5.toml";

std::string tiny_overrides(const TempDir& dir) {
  return "--cfg-options data.root='" + (dir / "data").string() +
         "' train.iters_per_task=40 train.iters_per_virtual_epoch=5 train.threads=1 log.interval=10 "
         "data.labels_per_class=3 model.width=8 model.hidden=16 lr_schedule.milestones=[30,35]";
}

TEST(TrainEndToEnd, FixMatchRunWritesAFinishedRunDirectory) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto run_dir = dir / "run";
  const auto p = testing::run_train(
      testing::config_path(kConfig) + " " + tiny_overrides(dir) + " --work-dir '" + run_dir.string() + "'", dir);
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  for (const char* file : {"config.toml", "train.log", "metrics.jsonl", "results.json"})
    EXPECT_TRUE(std::filesystem::exists(run_dir / file)) << file;

  const auto results = nlohmann::json::parse(testing::read_file(run_dir / "results.json"));
  EXPECT_EQ(results["method"], "fixmatch");
  for (const char* scenario : {"task_il", "class_il"}) {
    const auto& m = results["accuracy"][scenario]["matrix"];
    ASSERT_EQ(m.size(), 5u);
    for (int i = 0; i < 5; ++i)
      for (int j = 0; j < 5; ++j) {
        if (j <= i) {
          EXPECT_TRUE(m[i][j].is_number()) << scenario << " " << i << " " << j;
        } else {
          EXPECT_TRUE(m[i][j].is_null()) << scenario << " " << i << " " << j;
        }
      }
    EXPECT_TRUE(results["accuracy"][scenario]["final_average"].is_number());
    EXPECT_TRUE(results["accuracy"][scenario]["forgetting"].is_number());
  }
  // Each task of the tiny data (class = brightness) is learned: right after its
  // training, task-IL accuracy is far above the 50% of chance. (Old tasks are not
  // asserted: with brightness the only signal, BN's statistics move with each task.)
  double diagonal = 0;
  for (int t = 0; t < 5; ++t) diagonal += results["accuracy"]["task_il"]["matrix"][t][t].get<double>() / 5;
  EXPECT_GE(diagonal, 90.0);
  EXPECT_GT(results["timing"]["ms_per_iter_median"].get<double>(), 0.0);
  EXPECT_EQ(results["timing"]["tasks"].size(), 5u);
  EXPECT_GT(results["memory"]["peak_rss_mib"].get<double>(), 0.0);
  EXPECT_TRUE(results["memory"]["peak_gpu_mib"].is_null());  // a CPU run
  EXPECT_EQ(results["precision"]["amp"], "none");
  EXPECT_EQ(results["environment"]["threads"], 1);
  EXPECT_FALSE(results["environment"]["config_hash"].get<std::string>().empty());

  // metrics.jsonl: 4 progress lines per task (iterations 10, 20, 30, 40) and one eval line.
  std::ifstream lines(run_dir / "metrics.jsonl");
  int train_lines = 0, eval_lines = 0;
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] == "train") {
      ++train_lines;
      EXPECT_TRUE(j["losses"].contains("sup"));
      EXPECT_TRUE(j["losses"].contains("unsup"));
    } else {
      ++eval_lines;
    }
  }
  EXPECT_EQ(train_lines, 20);
  EXPECT_EQ(eval_lines, 5);
  EXPECT_NE(p.out.find("final average accuracy"), std::string::npos);
}

// The README's main run (EdgeHML) on the tiny data: the warm-up shortened to 10
// of 40 iterations so that the unlabeled term, the offline tier on disk and the
// online tier all take part.
TEST(TrainEndToEnd, EdgeHmlMainRunKeepsItsOfflineTierInTheRunDirectory) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto run_dir = dir / "run";
  const auto p = testing::run_train(testing::config_path("configs/edgehml/edgehml_small_cnn_fmnist5.toml") + " " +
                                        tiny_overrides(dir) + " method.unsup_warmup_iters=10 --work-dir '" +
                                        run_dir.string() + "'",
                                    dir);
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  const auto results = nlohmann::json::parse(testing::read_file(run_dir / "results.json"));
  EXPECT_EQ(results["method"], "edgehml");
  const auto& stats = results["method_stats"];
  EXPECT_GT(stats["offline_tier_stored"].get<double>(), 0);
  EXPECT_GT(stats["offline_tier_peak_disk_bytes"].get<double>(), 0);
  EXPECT_GT(stats["online_tier_entries"].get<double>(), 0);
  EXPECT_EQ(stats["labeled_tier_entries"].get<double>(), 5 * 2 * 3);  // every labeled image, one entry each
  EXPECT_TRUE(std::filesystem::exists(run_dir / "edgehml_offline_tier.bin"));
  EXPECT_NE((p.out + p.err).find("drew"), std::string::npos) << "the task-end draw is logged";
  // The warm-up's progress lines carry a zero unlabeled term; later ones do not.
  std::ifstream lines(run_dir / "metrics.jsonl");
  int zero_unsup = 0, train_lines = 0;
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] != "train") continue;
    ++train_lines;
    if (j["losses"]["unsup"].get<double>() == 0.0 && j["iter"].get<int>() <= 10) ++zero_unsup;
  }
  EXPECT_EQ(train_lines, 20);
  EXPECT_EQ(zero_unsup, 5);  // iteration 10 of each task is the last of the warm-up
}

TEST(TrainEndToEnd, SavedConfigReproducesTheRun) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto first = dir / "first", second = dir / "second";
  auto p = testing::run_train(testing::config_path("configs/sft/sft_small_cnn_fmnist5.toml") + " " +
                                  tiny_overrides(dir) + " --work-dir '" + first.string() + "'",
                              dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  p = testing::run_train("'" + (first / "config.toml").string() + "' --work-dir '" + second.string() + "'", dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const auto a = nlohmann::json::parse(testing::read_file(first / "results.json"));
  const auto b = nlohmann::json::parse(testing::read_file(second / "results.json"));
  EXPECT_EQ(a["accuracy"], b["accuracy"]);
  EXPECT_EQ(a["environment"]["config_hash"], b["environment"]["config_hash"]);
  EXPECT_EQ(a["name"], "sft_small_cnn_fmnist5");
  EXPECT_EQ(b["name"], "sft_small_cnn_fmnist5");
}

// --describe prints what the declarations say: the keys of one component with
// their defaults (per registered name), a section, or an error naming the known.
TEST(TrainEndToEnd, DescribePrintsTheDeclaredKeys) {
  TempDir dir;
  const auto der = testing::run_train("--describe der", dir);
  ASSERT_EQ(der.exit_code, 0) << der.err;
  EXPECT_NE(der.out.find("method der (continual)  [method]  DER: "), std::string::npos) << der.out;
  EXPECT_NE(der.out.find("buffer_size = 200"), std::string::npos) << der.out;
  EXPECT_NE(der.out.find("alpha = 0.3"), std::string::npos) << der.out;
  EXPECT_EQ(der.out.find("beta"), std::string::npos) << "DER has no beta: " << der.out;
  const auto derpp = testing::run_train("--describe derpp", dir);
  EXPECT_NE(derpp.out.find("alpha = 0.1"), std::string::npos) << derpp.out;
  EXPECT_NE(derpp.out.find("beta = 0.5"), std::string::npos) << derpp.out;
  const auto train = testing::run_train("--describe train", dir);
  EXPECT_NE(train.out.find("[train]"), std::string::npos) << train.out;
  EXPECT_NE(train.out.find("seed = 0"), std::string::npos) << train.out;
  const auto unknown = testing::run_train("--describe nothing_here", dir);
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("nothing is called 'nothing_here'; known: train, data, model"), std::string::npos)
      << unknown.err;
}

// docs/keys.md is `sscl_train --describe --markdown`, so the docs cannot drift
// from the declarations: regenerate it with tools/docs-keys when this fails.
TEST(TrainEndToEnd, DocsKeysAreTheDescribeOutput) {
  TempDir dir;
  const auto p = testing::run_train("--describe --markdown", dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const std::string doc = testing::read_file(testing::config_path("docs/keys.md"));
  const std::string marker = "<!-- generated: sscl_train --describe --markdown -->\n";
  const auto at = doc.find(marker);
  ASSERT_NE(at, std::string::npos) << "docs/keys.md lost its marker line";
  EXPECT_TRUE(doc.substr(at + marker.size()) == p.out) << "docs/keys.md is out of date: run tools/docs-keys";
}

TEST(TrainEndToEnd, EpochsPerTaskConvertToIterationsOverTheLabeledImages) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto run_dir = dir / "run";
  // Fully supervised: each task holds 2 classes x 12 labeled images = 24; two
  // epochs at batch 5 are ceil(48 / 5) = 10 iterations per task.
  const auto p = testing::run_train(testing::config_path("configs/sft/sft_small_cnn_fmnist5.toml") +
                                        " --cfg-options data.root='" + (dir / "data").string() +
                                        "' data.labels_per_class=-1 data.batch_size=5 train.epochs_per_task=2 "
                                        "train.threads=1 model.width=8 model.hidden=16 --work-dir '" +
                                        run_dir.string() + "'",
                                    dir);
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  EXPECT_NE(p.out.find("2 epoch(s) over the labeled images at batch 5 = 10, 10, 10, 10, 10"), std::string::npos)
      << p.out;
  const auto results = nlohmann::json::parse(testing::read_file(run_dir / "results.json"));
  for (const auto& task : results["timing"]["tasks"]) EXPECT_EQ(task["iters"], 10);
  EXPECT_TRUE(results["method_stats"].is_object());

  // An epoch schedule makes the sampler epochs of permutations; the split as drawn
  // is in results.json.
  EXPECT_NE(p.out.find("sampler: epoch (each epoch a seeded permutation"), std::string::npos) << p.out;
  const auto& split = results["split"]["tasks"];
  ASSERT_EQ(split.size(), 5u);
  EXPECT_EQ(split[1]["classes"], nlohmann::json::array({2, 3}));
  EXPECT_EQ(split[1]["labeled_per_class"]["2"], 12);
  EXPECT_EQ(split[1]["unlabeled"], 0);

  const auto bad = testing::run_train(
      testing::config_path("configs/sft/sft_small_cnn_fmnist5.toml") + " --cfg-options train.epochs_per_task=0", dir);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("train.epochs_per_task"), std::string::npos) << bad.err;
}

// Domain-IL on Rotated Fashion-MNIST: every task has the 10 classes, one shared
// head, and the accuracy matrices cover each rotation seen.
TEST(TrainEndToEnd, DomainIncrementalRunOnRotatedFashionMnist) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto run_dir = dir / "run";
  const std::string base = testing::config_path("configs/er/er_small_cnn_fmnist5.toml") + " " + tiny_overrides(dir) +
                           " data.scenario=domain-il data.domain.kind=rotated data.num_tasks=3 "
                           "'data.domain.rotations=[0.0, 45.0, 90.0]'";
  const auto p = testing::run_train(base + " --work-dir '" + run_dir.string() + "'", dir);
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  EXPECT_NE(p.out.find("domains (one per task, every class in each): rotated 0 deg, rotated 45 deg, rotated 90 deg"),
            std::string::npos)
      << p.out;
  EXPECT_NE(p.out.find("domain-IL: one head over every class, so the task-IL and class-IL figures are the same"),
            std::string::npos)
      << p.out;
  const auto results = nlohmann::json::parse(testing::read_file(run_dir / "results.json"));
  EXPECT_EQ(results["scenario"], "domain-il");
  const auto& m = results["accuracy"]["class_il"]["matrix"];
  ASSERT_EQ(m.size(), 3u);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j <= i; ++j) EXPECT_TRUE(m[i][j].is_number()) << i << " " << j;
  // One head over every class: the task mask is every class, so both views agree.
  EXPECT_EQ(results["accuracy"]["task_il"]["matrix"], m);
  EXPECT_EQ(results["split"]["tasks"][2]["labeled_per_class"].size(), 10u);
  EXPECT_EQ(results["split"]["tasks"][2]["labeled_per_class"]["7"], 3);

  // Refused combinations name their key, and nothing is written.
  const auto refused = [&](const std::string& args, const std::string& key) {
    const auto bad_dir = dir / "refused";
    const auto r = testing::run_train(args + " --work-dir '" + bad_dir.string() + "'", dir);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.err.find(key), std::string::npos) << args << ": " << r.err;
    EXPECT_FALSE(std::filesystem::exists(bad_dir)) << args;
  };
  refused(testing::config_path("configs/er/er_small_cnn_fmnist5.toml") + " " + tiny_overrides(dir) +
              " data.scenario=domain-il",
          "config key 'data.scenario'");
  refused(base + " data.scenario=class-il", "config key 'data.scenario'");
  refused(base + " 'data.domain.rotations=[0.0, 45.0]'", "data.domain.rotations");
  refused(testing::config_path("configs/pnn/pnn_small_cnn_fmnist5.toml") + " " + tiny_overrides(dir) +
              " data.scenario=domain-il data.domain.kind=permuted data.num_tasks=2",
          "does not support data.scenario = 'domain-il'");
  refused(base + " 'data.labels_per_class=[3, 3]'", "data.labels_per_class");
  refused(base + " data.labels_fraction=0", "data.labels_fraction");
}

// Entropy queries with the ground-truth oracle, then a second run whose labels
// come from the first run's model as a teacher: who labeled what is recorded,
// and a teacher's mistakes are counted (against the dataset, after the run).
TEST(TrainEndToEnd, ActiveLearningRecordsItsQueriesAndATeacherRunCanLabelForAnother) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto first = dir / "first", second = dir / "second";
  const std::string active = " active.warmup_iters=10 active.budget_per_class=2 ";
  auto p = testing::run_train(testing::config_path("configs/active/sft_entropy_small_cnn_fmnist5.toml") + " " +
                                  tiny_overrides(dir) + active + "data.labels_per_class=1 --work-dir '" +
                                  first.string() + "'",
                              dir);
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  EXPECT_NE(p.out.find("active learning: entropy queries 2 label(s) per class on average in 1 round(s) at "
                       "iteration(s) 10"),
            std::string::npos)
      << p.out;
  EXPECT_TRUE(std::filesystem::exists(first / "model.pt"));
  auto results = nlohmann::json::parse(testing::read_file(first / "results.json"));
  auto al = results["active_learning"];
  EXPECT_EQ(al["strategy"], "entropy");
  EXPECT_EQ(al["oracle"], "ground_truth");
  EXPECT_EQ(al["model_given"], false);
  EXPECT_EQ(al["labels_revealed_by_oracle"], 5 * 4);
  ASSERT_EQ(al["tasks"].size(), 5u);
  for (const auto& t : al["tasks"]) {
    EXPECT_EQ(t["seed_labels"], 2);
    EXPECT_EQ(t["queried_labels"], 4);
    EXPECT_EQ(t["labeled"], 6);
  }
  ASSERT_EQ(al["queries"].size(), 5u);
  for (const auto& q : al["queries"]) {
    EXPECT_EQ(q["iter"], 10);
    EXPECT_EQ(q["ids"].size(), 4u);
    EXPECT_EQ(q["labels"].size(), 4u);
    EXPECT_EQ(q["candidates"], 2 * 12 - 2);
  }

  p = testing::run_train(testing::config_path("configs/active/sft_entropy_small_cnn_fmnist5.toml") + " " +
                             tiny_overrides(dir) + active +
                             "data.labels_per_class=1 active.oracle='teacher' "
                             "active.teacher='" +
                             first.string() + "' --work-dir '" + second.string() + "'",
                         dir);
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  results = nlohmann::json::parse(testing::read_file(second / "results.json"));
  al = results["active_learning"];
  EXPECT_EQ(al["oracle"], "teacher:" + first.string());
  EXPECT_EQ(al["model_given"], true);
  ASSERT_TRUE(al["wrong_labels"].is_number());
  int64_t wrong = 0;
  for (const auto& q : al["queries"]) {
    EXPECT_EQ(q["model_given"], true);
    wrong += q["wrong_labels"].get<int64_t>();
  }
  EXPECT_EQ(al["wrong_labels"].get<int64_t>(), wrong);

  // A teacher directory without a model is named before anything is written.
  const auto third = dir / "third";
  p = testing::run_train(testing::config_path("configs/active/sft_entropy_small_cnn_fmnist5.toml") + " " +
                             tiny_overrides(dir) + active + "active.oracle='teacher' active.teacher='" +
                             (dir / "data").string() + "' --work-dir '" + third.string() + "'",
                         dir);
  EXPECT_NE(p.exit_code, 0);
  EXPECT_NE(p.err.find("config.toml"), std::string::npos) << p.err;
  EXPECT_FALSE(std::filesystem::exists(third));
}

// model.pretrained: a second run starts from the first's model.pt, says so in
// train.log and results.json, and at lr 1e-30 (it must be positive; every step
// is far below a float's resolution at these weights) ends with the first's
// weights. The BatchNorm statistics, buffers, still follow the new batches.
TEST(TrainEndToEnd, PretrainedWeightsStartTheRunAndAreReported) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 8, 2);
  const std::string sft = testing::config_path("configs/sft/sft_small_cnn_fmnist5.toml") +
                          " --cfg-options data.root='" + (dir / "data").string() +
                          "' train.iters_per_task=4 train.threads=1 model.width=8 checkpoint.enabled=false";
  auto p = testing::run_train(sft + " --work-dir '" + (dir / "first").string() + "'", dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  p = testing::run_train(sft + " optimizer.lr=1e-30 model.pretrained='" + (dir / "first" / "model.pt").string() +
                             "' model.pretrained_strict=true --work-dir '" + (dir / "second").string() + "'",
                         dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const auto results = nlohmann::json::parse(testing::read_file(dir / "second" / "results.json"));
  const auto& pretrained = results["pretrained"];
  const std::string n = std::to_string(pretrained["model_tensors"].get<int>());
  EXPECT_NE(p.out.find("(sscl model.pt): loaded " + n + " of the model's " + n + " tensors"), std::string::npos)
      << p.out;
  EXPECT_EQ(pretrained["format"], "sscl model.pt");
  EXPECT_EQ(pretrained["loaded_tensors"], pretrained["model_tensors"]);
  EXPECT_TRUE(pretrained["missing"].empty() && pretrained["skipped"].empty() && pretrained["unexpected"].empty());
  const auto first = read_state_dict_file(dir / "first" / "model.pt");
  const auto second = read_state_dict_file(dir / "second" / "model.pt");
  ASSERT_EQ(first.tensors.size(), second.tensors.size());
  int compared = 0;
  for (size_t i = 0; i < first.tensors.size(); ++i) {
    const auto& [name, tensor] = first.tensors[i];
    ASSERT_EQ(name, second.tensors[i].first);
    if (name.find("running_") != std::string::npos || name.find("num_batches") != std::string::npos) continue;
    EXPECT_TRUE(tensor.equal(second.tensors[i].second)) << name;
    ++compared;
  }
  EXPECT_GT(compared, 0);
  EXPECT_GT(pretrained["loaded_parameters"].get<int>(), 0);
}

// model.freeze = "backbone" from pretrained weights, under GDumb, which
// rebuilds its network at every task: the backbone the run ends with is the
// file's, tensor for tensor, BatchNorm statistics included (in eval mode they
// never move), while the head trains. results.json and train.log say what was
// frozen; a run without these keys reports neither (nor "pretrained").
TEST(TrainEndToEnd, FrozenPretrainedBackboneStaysAsLoadedThroughGdumbRestarts) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 8, 2);
  const std::string common = " --cfg-options data.root='" + (dir / "data").string() +
                             "' train.iters_per_task=4 train.threads=1 model.width=8 checkpoint.enabled=false";
  auto p = testing::run_train(testing::config_path("configs/sft/sft_small_cnn_fmnist5.toml") + common +
                                  " --work-dir '" + (dir / "first").string() + "'",
                              dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const auto plain = nlohmann::json::parse(testing::read_file(dir / "first" / "results.json"));
  EXPECT_FALSE(plain.contains("pretrained"));
  EXPECT_FALSE(plain.contains("fine_tune"));
  p = testing::run_train(testing::config_path("configs/gdumb/gdumb_small_cnn_fmnist5.toml") + common +
                             " model.pretrained='" + (dir / "first" / "model.pt").string() +
                             "' model.freeze=backbone --work-dir '" + (dir / "second").string() + "'",
                         dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const auto results = nlohmann::json::parse(testing::read_file(dir / "second" / "results.json"));
  const auto& fine_tune = results["fine_tune"];
  EXPECT_EQ(fine_tune["frozen_modules"], nlohmann::json::array({"backbone"}));
  const std::string frozen = std::to_string(fine_tune["frozen_parameters"].get<int64_t>());
  EXPECT_NE(p.out.find("frozen (model.freeze, model.frozen_stages): backbone: "), std::string::npos) << p.out;
  EXPECT_NE(p.out.find(frozen + " parameters do not train"), std::string::npos) << p.out;
  const auto first = read_state_dict_file(dir / "first" / "model.pt");
  const auto second = read_state_dict_file(dir / "second" / "model.pt");
  ASSERT_EQ(first.tensors.size(), second.tensors.size());
  int64_t backbone_parameters = 0, heads_changed = 0;
  for (size_t i = 0; i < first.tensors.size(); ++i) {
    const auto& [name, tensor] = first.tensors[i];
    ASSERT_EQ(name, second.tensors[i].first);
    if (name.rfind("backbone.", 0) == 0) {
      EXPECT_TRUE(tensor.equal(second.tensors[i].second)) << name;
      if (name.find("running_") == std::string::npos && name.find("num_batches") == std::string::npos)
        backbone_parameters += tensor.numel();
    } else if (name.rfind("head.", 0) == 0) {
      heads_changed += !tensor.equal(second.tensors[i].second);
    }
  }
  EXPECT_EQ(std::to_string(backbone_parameters), frozen);
  EXPECT_GT(heads_changed, 0);
}

// optimizer.lr_mult keys that name no parameter, and freezing a method that
// trains networks beside the model, are refused before the run directory exists.
TEST(TrainErrors, FineTuningKeysThatCannotApplyNameTheKey) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 8, 2);
  const std::string work_dir = " --work-dir '" + (dir / "run").string() + "'";
  const std::string common = work_dir + " --cfg-options data.root='" + (dir / "data").string() +
                             "' train.iters_per_task=2 train.threads=1 model.width=8";
  auto p = testing::run_train(
      testing::config_path("configs/sft/sft_small_cnn_fmnist5.toml") + common + " optimizer.lr_mult.encoder=0.1", dir);
  EXPECT_NE(p.exit_code, 0);
  EXPECT_NE(p.err.find("config key 'optimizer.lr_mult.encoder'"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("is in the name of no parameter of the model ('backbone.conv1.weight'"), std::string::npos)
      << p.err;
  p = testing::run_train(
      testing::config_path("configs/sft/sft_small_cnn_fmnist5.toml") + common + " model.frozen_stages=3", dir);
  EXPECT_NE(p.exit_code, 0);
  EXPECT_NE(p.err.find("config key 'model.frozen_stages'"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("3 is past the backbone's last stage, 2 (0 is the stem)"), std::string::npos) << p.err;
  p = testing::run_train(
      testing::config_path("configs/pnn/pnn_small_cnn_fmnist5.toml") + common + " model.freeze=backbone", dir);
  EXPECT_NE(p.exit_code, 0);
  EXPECT_NE(p.err.find("config key 'model.freeze'"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("trains networks beside the model"), std::string::npos) << p.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "run"));
}

}  // namespace
}  // namespace sscl
