#include "core/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device random;
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("sscl_config_test_" + std::string(test ? test->name() : "x") + "_" +
                                         std::to_string(random()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Writes `text` to `name` (relative, may contain folders) and returns its path.
  fs::path write(const std::string& name, const std::string& text) const {
    fs::path file = path_ / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
    return file;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The ConfigError message of `action`; a test failure if it does not throw one.
template <typename F>
std::string error_of(F action) {
  try {
    action();
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return "";
}

std::string at(const fs::path& file, int line) { return file.string() + ":" + std::to_string(line); }

TEST(Config, NestedBasesWithRelativePathsMergeInListedOrder) {
  TempDir dir;
  fs::path common = dir.write("configs/_base_/common.toml",
                              "seed = 1\n"
                              "name = \"common\"\n"
                              "[optimizer]\n"
                              "lr = 0.5\n"
                              "momentum = 0.9\n");
  fs::path dataset = dir.write("configs/_base_/datasets/cifar.toml",
                               "_base_ = \"../common.toml\"\n"
                               "name = \"cifar\"\n"
                               "[data]\n"
                               "root = \"/data\"\n"
                               "batch = 64\n");
  fs::path schedule = dir.write("configs/_base_/schedule.toml",
                                "[data]\n"
                                "batch = 128\n"
                                "[optimizer]\n"
                                "lr = 0.1\n");
  fs::path run = dir.write("configs/exp/run.toml",
                           "_base_ = [\"../_base_/datasets/cifar.toml\", "
                           "\"../_base_/schedule.toml\"]\n"
                           "seed = 7\n");
  Config config = Config::load(run);

  EXPECT_EQ(config.source(), run);
  EXPECT_EQ(config.get<int>("seed"), 7);                // own content last
  EXPECT_EQ(config.get<std::string>("name"), "cifar");  // base over its base
  EXPECT_EQ(config.get<int>("data.batch"), 128);        // second base over first
  EXPECT_EQ(config.get<std::string>("data.root"), "/data");
  EXPECT_DOUBLE_EQ(config.get<double>("optimizer.lr"), 0.1);
  EXPECT_DOUBLE_EQ(config.get<double>("optimizer.momentum"), 0.9);
  EXPECT_FALSE(config.has("_base_"));

  EXPECT_EQ(config.origin("seed"), at(run, 2));
  EXPECT_EQ(config.origin("name"), at(dataset, 2));
  EXPECT_EQ(config.origin("data.batch"), at(schedule, 2));
  EXPECT_EQ(config.origin("data.root"), at(dataset, 4));
  EXPECT_EQ(config.origin("optimizer.momentum"), at(common, 5));
  EXPECT_EQ(config.origin("optimizer.lr"), at(schedule, 4));
  EXPECT_EQ(config.origin("no.such.key"), "");
}

TEST(Config, FromStringResolvesBasesFromTheCurrentDirectory) {
  TempDir dir;
  dir.write("base.toml", "a = 1\nb = 2\n");
  fs::path previous = fs::current_path();
  fs::current_path(dir.path());
  std::string message;
  try {
    Config config = Config::from_string("_base_ = \"base.toml\"\nb = 3\n", "<inline>");
    EXPECT_EQ(config.get<int>("a"), 1);
    EXPECT_EQ(config.get<int>("b"), 3);
    EXPECT_EQ(config.origin("a"), "base.toml:1");
    EXPECT_EQ(config.origin("b"), "<inline>:2");
    EXPECT_TRUE(config.source().empty());
  } catch (const std::exception& e) {
    message = e.what();
  }
  fs::current_path(previous);
  EXPECT_EQ(message, "");
}

TEST(Config, TablesDeepMergeAndArraysReplace) {
  TempDir dir;
  dir.write("base.toml",
            "[model]\n"
            "name = \"resnet\"\n"
            "widths = [16, 32, 64]\n"
            "[model.head]\n"
            "dropout = 0.1\n"
            "classes = 10\n");
  fs::path derived = dir.write("derived.toml",
                               "_base_ = \"base.toml\"\n"
                               "[model]\n"
                               "widths = [8]\n"
                               "[model.head]\n"
                               "classes = 100\n");
  Config config = Config::load(derived);
  EXPECT_EQ(config.get<std::string>("model.name"), "resnet");
  EXPECT_THAT(config.get<std::vector<std::int64_t>>("model.widths"), ElementsAre(8));
  EXPECT_DOUBLE_EQ(config.get<double>("model.head.dropout"), 0.1);
  EXPECT_EQ(config.get<int>("model.head.classes"), 100);
  EXPECT_THAT(config.child_keys("model"), ElementsAre("head", "name", "widths"));
  EXPECT_THAT(config.child_keys("model.head"), ElementsAre("classes", "dropout"));
  EXPECT_TRUE(config.child_keys("model.name").empty());
  EXPECT_TRUE(config.child_keys("absent").empty());
}

TEST(Config, DeleteReplacesTheWholeBaseTable) {
  TempDir dir;
  dir.write("base.toml",
            "[scheduler]\n"
            "name = \"step\"\n"
            "milestones = [30, 60]\n"
            "gamma = 0.1\n"
            "[other]\n"
            "x = 1\n");
  fs::path derived = dir.write("derived.toml",
                               "_base_ = \"base.toml\"\n"
                               "[scheduler]\n"
                               "_delete_ = true\n"
                               "name = \"cosine\"\n"
                               "gamma = \"not a float any more\"\n");
  Config config = Config::load(derived);
  EXPECT_EQ(config.get<std::string>("scheduler.name"), "cosine");
  EXPECT_EQ(config.get<std::string>("scheduler.gamma"), "not a float any more");
  EXPECT_FALSE(config.has("scheduler.milestones"));
  EXPECT_FALSE(config.has("scheduler._delete_"));
  EXPECT_EQ(config.get<int>("other.x"), 1);
  EXPECT_EQ(config.origin("scheduler.gamma"), at(derived, 5));
  EXPECT_THAT(config.to_toml(), Not(HasSubstr("_delete_")));
}

TEST(Config, OverridesOfEveryKind) {
  Config config = Config::from_string(
      "[train]\n"
      "epochs = 10\n"
      "lr = 0.1\n"
      "amp = false\n"
      "milestones = [1, 2]\n"
      "name = \"sft\"\n"
      "device = \"cpu\"\n"
      "[model]\n"
      "depth = 18\n"
      "width = 1\n",
      "base.toml");
  config.apply_overrides({
      "train.epochs=20",
      "train.lr=0.01",
      "train.amp=true",
      "train.milestones=[5, 10, 15]",
      "train.name=\"fix match\"",
      "train.device=cuda:0",
      "model={depth = 50, extra = \"x\"}",
      "hooks.logger.every=100",
  });
  EXPECT_EQ(config.get<std::int64_t>("train.epochs"), 20);
  EXPECT_DOUBLE_EQ(config.get<double>("train.lr"), 0.01);
  EXPECT_TRUE(config.get<bool>("train.amp"));
  EXPECT_THAT(config.get<std::vector<std::int64_t>>("train.milestones"), ElementsAre(5, 10, 15));
  EXPECT_EQ(config.get<std::string>("train.name"), "fix match");
  EXPECT_EQ(config.get<std::string>("train.device"), "cuda:0");
  EXPECT_EQ(config.get<int>("model.depth"), 50);
  EXPECT_EQ(config.get<int>("model.width"), 1);  // an inline table merges too
  EXPECT_EQ(config.get<std::string>("model.extra"), "x");
  EXPECT_EQ(config.get<int>("hooks.logger.every"), 100);

  EXPECT_EQ(config.origin("train.epochs"), "--cfg-options train.epochs=20");
  EXPECT_EQ(config.origin("model.depth"), "--cfg-options model={depth = 50, extra = \"x\"}");
  EXPECT_EQ(config.origin("model.width"), "base.toml:10");
  EXPECT_EQ(config.origin("hooks.logger"), "--cfg-options hooks.logger.every=100");

  // A bare word stays a string even where TOML would read it otherwise.
  config.apply_override("train.device=fixmatch");
  config.apply_override("when=2024-01-01");
  EXPECT_EQ(config.get<std::string>("train.device"), "fixmatch");
  EXPECT_EQ(config.get<std::string>("when"), "2024-01-01");
  EXPECT_NO_THROW(config.ensure_all_used());
}

TEST(Config, IntegerPromotesToFloatInFilesAndOverrides) {
  TempDir dir;
  dir.write("base.toml", "lr = 1\nmomentum = 0.9\nsteps = 3\n");
  fs::path derived = dir.write("derived.toml", "_base_ = \"base.toml\"\nlr = 0.5\nmomentum = 1\n");
  Config config = Config::load(derived);
  EXPECT_DOUBLE_EQ(config.get<double>("lr"), 0.5);
  EXPECT_DOUBLE_EQ(config.get<double>("momentum"), 1.0);
  EXPECT_THAT(config.to_toml(), HasSubstr("momentum = 1.0\n"));  // stays a float

  config.apply_override("lr=2");  // an integer for a float key is stored as a float
  EXPECT_DOUBLE_EQ(config.get<double>("lr"), 2.0);
  EXPECT_THAT(config.to_toml(), HasSubstr("lr = 2.0\n"));
  config.apply_override("steps=2.5");
  EXPECT_DOUBLE_EQ(config.get<double>("steps"), 2.5);
  EXPECT_EQ(config.origin("steps"), "--cfg-options steps=2.5");
  // Reading it as an integer now fails, naming the override.
  EXPECT_THAT(error_of([&] { config.get<int>("steps"); }),
              HasSubstr("config key 'steps' (--cfg-options steps=2.5) must be an integer, got a float"));
}

TEST(Config, SyntaxErrorNamesFileLineAndColumn) {
  TempDir dir;
  fs::path file = dir.write("bad.toml", "a = 1\nb = = 2\n");
  std::string message = error_of([&] { Config::load(file); });
  EXPECT_THAT(message, HasSubstr(file.string() + ":2:"));
  EXPECT_THAT(message, HasSubstr("TOML syntax error"));
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST(Config, MissingFile) {
  TempDir dir;
  fs::path file = dir.path() / "nope.toml";
  EXPECT_THAT(error_of([&] { Config::load(file); }), HasSubstr("config file not found: " + file.string()));
}

TEST(Config, MissingBaseNamesTheLineThatNamesIt) {
  TempDir dir;
  fs::path file = dir.write("sub/a.toml", "x = 1\n_base_ = [\"../gone.toml\"]\n");
  EXPECT_THAT(error_of([&] { Config::load(file); }),
              HasSubstr(at(file, 2) + ": base config not found: " + (dir.path() / "gone.toml").string()));
}

TEST(Config, BaseCycleNamesTheChain) {
  TempDir dir;
  fs::path a = dir.write("a.toml", "_base_ = \"b.toml\"\n");
  fs::path b = dir.write("b.toml", "_base_ = \"a.toml\"\n");
  std::string message = error_of([&] { Config::load(a); });
  EXPECT_THAT(message, HasSubstr("base config cycle"));
  EXPECT_THAT(message, HasSubstr(a.string() + " -> " + b.string() + " -> " + a.string()));

  fs::path self = dir.write("self.toml", "_base_ = [\"self.toml\"]\n");
  EXPECT_THAT(error_of([&] { Config::load(self); }), HasSubstr("base config cycle"));
}

TEST(Config, BaseOfWrongType) {
  TempDir dir;
  fs::path file = dir.write("a.toml", "\n_base_ = 3\n");
  EXPECT_THAT(error_of([&] { Config::load(file); }),
              HasSubstr(at(file, 2) + ": _base_ must be a string or an array of strings, got an integer"));
  fs::path mixed = dir.write("b.toml", "_base_ = [\"a.toml\", 1]\n");
  EXPECT_THAT(error_of([&] { Config::load(mixed); }), HasSubstr("_base_ must be a string"));
}

TEST(Config, KeysMustBeDottedPathSegments) {
  TempDir dir;
  fs::path file = dir.write("a.toml", "[model]\nok = 1\n\"a.b\" = 2\n");
  EXPECT_THAT(error_of([&] { Config::load(file); }), HasSubstr(at(file, 3) + ": invalid key 'model.a.b'"));
  fs::path nested = dir.write("b.toml", "[model]\n_base_ = \"a.toml\"\n");
  EXPECT_THAT(error_of([&] { Config::load(nested); }), HasSubstr("only allowed at the top level"));
  fs::path flag = dir.write("c.toml", "[model]\n_delete_ = 1\n");
  EXPECT_THAT(error_of([&] { Config::load(flag); }), HasSubstr("'model._delete_' must be a boolean"));
}

TEST(Config, TypeChangeInDerivedFileNamesKeyAndBothLocations) {
  TempDir dir;
  fs::path base = dir.write("base.toml", "[optimizer]\nname = \"sgd\"\nlr = 0.1\n");
  fs::path derived = dir.write("derived.toml", "_base_ = \"base.toml\"\n[optimizer]\nlr = \"fast\"\n");
  std::string message = error_of([&] { Config::load(derived); });
  EXPECT_THAT(message, HasSubstr(at(derived, 3) + ": type change for 'optimizer.lr' from float to string"));
  EXPECT_THAT(message, HasSubstr("(defined at " + at(base, 3) + ")"));

  fs::path scalar = dir.write("scalar.toml", "_base_ = \"base.toml\"\noptimizer = 1\n");
  EXPECT_THAT(error_of([&] { Config::load(scalar); }), HasSubstr("type change for 'optimizer' from table to integer"));
}

TEST(Config, OverrideTypeChangeNamesTheOrigin) {
  TempDir dir;
  fs::path file = dir.write("a.toml", "[train]\nepochs = 10\n");
  Config config = Config::load(file);
  EXPECT_THAT(error_of([&] { config.apply_override("train.epochs=ten"); }),
              HasSubstr("--cfg-options train.epochs=ten: type change for 'train.epochs' from "
                        "integer to string (defined at " +
                        at(file, 2) + ")"));
  EXPECT_THAT(error_of([&] { config.apply_override("train=[1]"); }),
              HasSubstr("type change for 'train' from table to array"));
  EXPECT_THAT(error_of([&] { config.apply_override("train.epochs.x=1"); }),
              HasSubstr("'train.epochs' is an integer (defined at " + at(file, 2) + "), not a table"));
  // A failed override changes nothing.
  EXPECT_THAT(error_of([&] { config.apply_override("train={epochs = 1, batch = \"x\", epochs2 = [}"); }),
              HasSubstr("cannot parse"));
  EXPECT_THAT(error_of([&] { config.apply_override("train={batch = 3, epochs = \"x\"}"); }),
              HasSubstr("type change for 'train.epochs'"));
  EXPECT_FALSE(config.has("train.batch"));
  EXPECT_EQ(config.get<int>("train.epochs"), 10);
}

TEST(Config, MalformedOverrides) {
  Config config = Config::from_string("a = 1\n", "a.toml");
  EXPECT_THAT(error_of([&] { config.apply_override("a"); }), HasSubstr("--cfg-options a: expected KEY=VALUE"));
  EXPECT_THAT(error_of([&] { config.apply_override("=1"); }), HasSubstr("invalid key ''"));
  EXPECT_THAT(error_of([&] { config.apply_override("a..b=1"); }), HasSubstr("invalid key 'a..b'"));
  EXPECT_THAT(error_of([&] { config.apply_override("a b=1"); }), HasSubstr("invalid key 'a b'"));
  EXPECT_THAT(error_of([&] { config.apply_override("a="); }), HasSubstr("--cfg-options a=: empty value"));
  EXPECT_THAT(error_of([&] { config.apply_override("a=[1, 2"); }),
              HasSubstr("--cfg-options a=[1, 2: cannot parse the value as TOML"));
  EXPECT_THAT(error_of([&] { config.apply_override("a=two words"); }), HasSubstr("cannot parse"));
  // A trailing comment would silently drop text, so the value is taken literally.
  EXPECT_THAT(error_of([&] { config.apply_override("a=5#note"); }),
              HasSubstr("type change for 'a' from integer to string"));
  EXPECT_EQ(config.get<int>("a"), 1);
}

TEST(Config, GetWithWrongTypeNamesKeyAndOrigin) {
  TempDir dir;
  fs::path file = dir.write("a.toml",
                            "[optimizer]\n"
                            "lr = \"0.1\"\n"
                            "betas = [0.9, \"x\"]\n"
                            "steps = [1, 2.5]\n"
                            "big = 5000000000\n"
                            "flag = 1\n");
  Config config = Config::load(file);
  EXPECT_THAT(error_of([&] { config.get<double>("optimizer.lr"); }),
              HasSubstr("config key 'optimizer.lr' (" + at(file, 2) + ") must be a float, got a string"));
  EXPECT_THAT(error_of([&] { config.get<std::vector<double>>("optimizer.betas"); }),
              HasSubstr("config key 'optimizer.betas' (" + at(file, 3) +
                        ") must be an array of floats, but element [1] is a string"));
  EXPECT_THAT(error_of([&] { config.get<std::vector<std::int64_t>>("optimizer.steps"); }),
              HasSubstr("an array of integers, but element [1] is a float"));
  EXPECT_THAT(error_of([&] { config.get<std::vector<std::string>>("optimizer.lr"); }),
              HasSubstr("must be an array of strings, got a string"));
  EXPECT_THAT(error_of([&] { config.get<int>("optimizer.big"); }),
              HasSubstr("config key 'optimizer.big' (" + at(file, 5) + ") must be an integer between"));
  EXPECT_EQ(config.get<std::int64_t>("optimizer.big"), 5000000000);
  EXPECT_THAT(error_of([&] { config.get<bool>("optimizer.flag"); }), HasSubstr("must be a boolean, got an integer"));
  EXPECT_THAT(error_of([&] { config.get<std::string>("optimizer"); }), HasSubstr("must be a string, got a table"));
  // Integers are accepted where floats are expected.
  EXPECT_THAT(config.get<std::vector<double>>("optimizer.steps"), ElementsAre(1.0, 2.5));
}

TEST(Config, MissingRequiredKeyAndDefaults) {
  Config config = Config::from_string("[a]\nb = 2\n", "a.toml");
  EXPECT_THAT(error_of([&] { config.get<int>("a.c"); }), HasSubstr("missing required config key 'a.c'"));
  EXPECT_THAT(error_of([&] { config.get<int>("a.b.c"); }), HasSubstr("missing required config key 'a.b.c'"));
  EXPECT_EQ(config.get_or<int>("a.c", 5), 5);
  EXPECT_EQ(config.get_or<int>("a.b", 5), 2);
  EXPECT_EQ(config.get_or("a.name", "fallback"), "fallback");
  EXPECT_TRUE(config.has("a"));
  EXPECT_TRUE(config.has("a.b"));
  EXPECT_FALSE(config.has("a.c"));
}

TEST(Config, GetChoiceListsTheChoices) {
  Config config = Config::from_string("method = \"fixmatc\"\n", "m.toml");
  std::string message = error_of([&] { config.get_choice("method", "sft", {"sft", "ewc", "fixmatch"}); });
  EXPECT_THAT(message, HasSubstr("config key 'method' (m.toml:1) must be one of: sft, ewc, fixmatch; got 'fixmatc'"));
  EXPECT_EQ(config.get_choice("other", "ewc", {"sft", "ewc"}), "ewc");
  config.apply_override("method=fixmatch");
  EXPECT_EQ(config.get_choice("method", "sft", {"sft", "ewc", "fixmatch"}), "fixmatch");
}

TEST(Config, FailNamesKeyAndOrigin) {
  Config config = Config::from_string("\n[data]\nbatch = -1\n", "d.toml");
  EXPECT_THAT(error_of([&] { config.fail("data.batch", "must be positive"); }),
              HasSubstr("config key 'data.batch' (d.toml:3): must be positive"));
  EXPECT_THAT(error_of([&] { config.section("data").fail("batch", "must be positive"); }),
              HasSubstr("config key 'data.batch' (d.toml:3): must be positive"));
}

TEST(Config, EnsureAllUsedNamesUnknownKeysWithOrigins) {
  TempDir dir;
  fs::path file = dir.write("a.toml",
                            "[optimizer]\n"
                            "lr = 0.1\n"
                            "momentum = 0.9\n"
                            "[unused]\n"
                            "list = [1]\n");
  Config config = Config::load(file);
  config.apply_override("optimizer.lrr=0.1");
  EXPECT_DOUBLE_EQ(config.get<double>("optimizer.lr"), 0.1);
  EXPECT_TRUE(config.has("optimizer.momentum"));  // has() does not count as a read
  std::string message = error_of([&] { config.ensure_all_used(); });
  EXPECT_THAT(message, HasSubstr("unknown config key 'optimizer.lrr' (from --cfg-options optimizer.lrr=0.1)"));
  EXPECT_THAT(message, HasSubstr("unknown config key 'optimizer.momentum' (from " + at(file, 3) + ")"));
  EXPECT_THAT(message, HasSubstr("unknown config key 'unused.list' (from " + at(file, 5) + ")"));
  EXPECT_THAT(message, HasSubstr("; "));
  EXPECT_THAT(message, Not(HasSubstr("'optimizer.lr' ")));

  config.get<double>("optimizer.lrr");
  config.get_or<double>("optimizer.momentum", 0.0);
  config.get<std::vector<std::int64_t>>("unused.list");
  EXPECT_NO_THROW(config.ensure_all_used());
}

TEST(Config, SectionsReadRelativeToTheirPrefix) {
  Config config = Config::from_string(
      "[optimizer]\n"
      "lr = 0.05\n"
      "name = \"sgd\"\n"
      "[optimizer.schedule]\n"
      "gamma = 0.5\n"
      "milestones = [3, 6]\n",
      "s.toml");
  ConfigSection optimizer = config.section("optimizer");
  EXPECT_EQ(optimizer.prefix(), "optimizer");
  EXPECT_EQ(&optimizer.config(), &config);
  EXPECT_DOUBLE_EQ(optimizer.get_or<double>("lr", 0.1), 0.05);
  EXPECT_DOUBLE_EQ(optimizer.get_or<double>("weight_decay", 5e-4), 5e-4);
  EXPECT_EQ(optimizer.get_choice("name", "adam", {"sgd", "adam"}), "sgd");
  EXPECT_EQ(optimizer.get_or("missing", "x"), "x");
  EXPECT_TRUE(optimizer.has("schedule"));
  EXPECT_EQ(optimizer.origin("lr"), "s.toml:2");
  EXPECT_THAT(optimizer.child_keys(), ElementsAre("lr", "name", "schedule"));
  EXPECT_THAT(optimizer.child_keys("schedule"), ElementsAre("gamma", "milestones"));

  ConfigSection schedule = optimizer.section("schedule");
  EXPECT_EQ(schedule.prefix(), "optimizer.schedule");
  EXPECT_DOUBLE_EQ(schedule.get<double>("gamma"), 0.5);
  EXPECT_THAT(schedule.get<std::vector<std::int64_t>>("milestones"), ElementsAre(3, 6));
  EXPECT_THAT(error_of([&] { schedule.get<int>("gamma"); }),
              HasSubstr("config key 'optimizer.schedule.gamma' (s.toml:5) must be an integer"));
  EXPECT_THAT(error_of([&] { schedule.get<int>("steps"); }),
              HasSubstr("missing required config key 'optimizer.schedule.steps'"));
  EXPECT_NO_THROW(config.ensure_all_used());
}

TEST(Config, ToTomlRoundTripsValuesAndFingerprint) {
  TempDir dir;
  dir.write("base.toml",
            "seed = 0x10\n"
            "[model]\n"
            "widths = [16, 32]\n"
            "[model.head]\n");
  fs::path file = dir.write("run.toml",
                            "_base_ = \"base.toml\"\n"
                            "title = \"quote \\\" backslash \\\\ tab \\t newline \\n é\"\n"
                            "lr = 0.1\n"
                            "tiny = 1e-8\n"
                            "whole = 3.0\n"
                            "third = 0.3333333333333333\n"
                            "negative = -0.0\n"
                            "huge = inf\n"
                            "flags = [true, false]\n"
                            "mixed = [1, \"two\", [3.5], {a = 1}]\n"
                            "[model]\n"
                            "name = \"resnet\"\n"
                            "[empty]\n");
  Config config = Config::load(file);
  config.apply_overrides({"model.head.classes=10", "extra.deep.flag=true"});
  std::string text = config.to_toml();
  EXPECT_THAT(text, Not(HasSubstr("_base_")));
  EXPECT_THAT(text, HasSubstr("lr = 0.1\n"));
  EXPECT_THAT(text, HasSubstr("seed = 16\n"));
  EXPECT_THAT(text, HasSubstr("[empty]\n"));

  fs::path saved = dir.write("saved/config.toml", text);
  Config reloaded = Config::load(saved);
  EXPECT_EQ(reloaded.to_toml(), text);
  EXPECT_EQ(reloaded.fingerprint(), config.fingerprint());
  EXPECT_EQ(config.fingerprint().size(), 16u);
  EXPECT_EQ(config.fingerprint().find_first_not_of("0123456789abcdef"), std::string::npos);

  for (const Config* c : {&config, &reloaded}) {
    EXPECT_EQ(c->get<std::string>("title"), "quote \" backslash \\ tab \t newline \n é");
    EXPECT_EQ(c->get<double>("lr"), 0.1);
    EXPECT_EQ(c->get<double>("tiny"), 1e-8);
    EXPECT_EQ(c->get<double>("whole"), 3.0);
    EXPECT_EQ(c->get<double>("third"), 0.3333333333333333);
    EXPECT_TRUE(std::signbit(c->get<double>("negative")));
    EXPECT_TRUE(std::isinf(c->get<double>("huge")));
    EXPECT_EQ(c->get<std::int64_t>("seed"), 16);
    EXPECT_THAT(c->get<std::vector<std::int64_t>>("model.widths"), ElementsAre(16, 32));
    EXPECT_EQ(c->get<std::string>("model.name"), "resnet");
    EXPECT_EQ(c->get<int>("model.head.classes"), 10);
    EXPECT_TRUE(c->get<bool>("extra.deep.flag"));
    EXPECT_TRUE(c->has("empty"));
    EXPECT_TRUE(c->has("mixed"));
  }
  EXPECT_EQ(reloaded.origin("lr"), saved.string() + ":" + std::to_string([&] {
                                     // The line of `lr` in the saved text.
                                     int line = 1;
                                     for (size_t i = 0; i < text.find("lr = "); ++i) line += text[i] == '\n';
                                     return line;
                                   }()));

  Config changed = reloaded;
  changed.apply_override("lr=0.2");
  EXPECT_NE(changed.fingerprint(), reloaded.fingerprint());
  EXPECT_EQ(reloaded.get<double>("lr"), 0.1);  // the copy is independent
}

// Regression (fuzz_config): an integer beyond 2^53 read as a float dereferenced the
// empty optional that TOML++ gives for it (undefined behaviour); it is now the nearest float.
TEST(Config, HugeIntegersReadAsTheNearestFloat) {
  Config config = Config::from_string(
      "big = 9007199254740993\nmost = -9223372036854775808\nlist = [1, 9007199254740993]\n", "big.toml");
  EXPECT_EQ(config.get<double>("big"), 9007199254740992.0);
  EXPECT_EQ(config.get<double>("most"), -9223372036854775808.0);
  EXPECT_THAT(config.get<std::vector<double>>("list"), ElementsAre(1.0, 9007199254740992.0));
  EXPECT_EQ(config.get<std::int64_t>("big"), 9007199254740993);
}

// Regression (fuzz_config): a bare word that is not UTF-8 was kept as a string that
// to_toml() then wrote into a file that does not load.
TEST(Config, OverrideValuesMustBeUtf8) {
  Config config = Config::from_string("name = \"x\"\n", "a.toml");
  const std::string before = config.to_toml();
  for (const std::string bad : {"\xbf#comment", "caf\xc3", "\xc0\xafx", "\xed\xa0\x80", "\xf4\x90\x80\x80"})
    EXPECT_THAT(error_of([&] { config.apply_override("name=" + bad); }),
                HasSubstr("--cfg-options name=" + bad + ": the value is not valid UTF-8"));
  EXPECT_EQ(config.to_toml(), before);
  config.apply_override("name=caf\xc3\xa9");  // é
  EXPECT_EQ(config.get<std::string>("name"), "caf\xc3\xa9");
  EXPECT_EQ(Config::from_string(config.to_toml(), "saved").to_toml(), config.to_toml());
}

// Regression (fuzz_config): `_base_=...` on the command line was stored as a plain
// key, which to_toml() wrote where a reload reads it as a base list.
TEST(Config, OverridesCannotSetReservedNames) {
  Config config = Config::from_string("[model]\nname = \"x\"\n", "a.toml");
  const std::string before = config.to_toml();
  for (const std::string key : {"_base_", "_base_.x", "model._base_"})
    EXPECT_THAT(error_of([&] { config.apply_override(key + "=\"other.toml\""); }),
                HasSubstr("--cfg-options " + key + "=\"other.toml\": _base_ can only be set in a config file"));
  for (const std::string assignment : {"model._delete_=1", "_delete_.x=true"})
    EXPECT_THAT(error_of([&] { config.apply_override(assignment); }),
                HasSubstr("--cfg-options " + assignment + ": _delete_ must be a boolean flag of a table"));
  EXPECT_EQ(config.to_toml(), before);
}

}  // namespace
}  // namespace sscl
