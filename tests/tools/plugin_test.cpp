// Methods outside the tree: the example of docs/extending.md built as a plugin
// (in this build, and against the installed package from a clean CMake project)
// and trained by sscl_train; a plugin the loader must refuse is one line naming
// the file (and the name) and a non-zero exit, before any run directory exists.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/tools/run_binary.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const std::string kExampleConfig = testing::config_path("examples/balanced_replay/balanced_replay_fmnist5.toml");

// A few iterations on a tiny Fashion-MNIST: enough to exercise the plugin's
// replay, state and figures.
std::string short_run(const TempDir& dir) {
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  return " --cfg-options data.root='\"" + (dir / "data").string() +
         "\"' train.iters_per_task=6 train.iters_per_virtual_epoch=3 lr_schedule.milestones=[4,5] "
         "checkpoint.interval=4 log.interval=3 method.buffer_size=20 method.replay_batch=4";
}

nlohmann::json results_of(const fs::path& run_dir) {
  return nlohmann::json::parse(testing::read_file(run_dir / "results.json"));
}

void expect_trained_the_example(const testing::Process& p, const fs::path& run_dir) {
  ASSERT_EQ(p.exit_code, 0) << p.out << p.err;
  const auto results = results_of(run_dir);
  EXPECT_EQ(results["method"], "balanced_replay");
  // 5 tasks x 6 iterations of 8 labeled images; the first iteration of the run
  // has nothing to replay, every later one a draw of 4.
  EXPECT_EQ(results["method_stats"]["replayed_images"], 4 * (5 * 6 - 1));
  EXPECT_EQ(results["method_stats"]["buffer_entries"], 20);
}

TEST(Plugins, TheExampleBuiltInTheTreeTrainsFromTheFlagOrTheConfigKey) {
  TempDir dir;
  const auto flag_run = dir / "flag";
  const auto p = testing::run_train(kExampleConfig + " --plugin " + SSCL_PLUGIN_BALANCED_REPLAY + " --work-dir '" +
                                        flag_run.string() + "'" + short_run(dir),
                                    dir);
  expect_trained_the_example(p, flag_run);
  EXPECT_NE((p.out + p.err).find("plugin " + std::string(SSCL_PLUGIN_BALANCED_REPLAY) + ": 1 name(s) registered"),
            std::string::npos)
      << p.out;
  // The run directory's config names the plugin by its absolute path, so a resume loads it again.
  const auto saved = testing::read_file(flag_run / "config.toml");
  EXPECT_NE(saved.find("plugins = [\"" + std::string(SSCL_PLUGIN_BALANCED_REPLAY) + "\"]"), std::string::npos) << saved;

  // `plugins` in a config, relative to that file.
  fs::create_directories(dir / "project" / "lib");
  fs::copy_file(SSCL_PLUGIN_BALANCED_REPLAY, dir / "project" / "lib" / "libbalanced_replay.so");
  testing::write_text(dir / "project" / "run.toml",
                      "_base_ = \"" + kExampleConfig + "\"\nplugins = [\"lib/libbalanced_replay.so\"]\n");
  const auto key_run = dir / "key";
  const auto q = testing::run_train(
      (dir / "project" / "run.toml").string() + " --work-dir '" + key_run.string() + "'" + short_run(dir), dir);
  expect_trained_the_example(q, key_run);
  EXPECT_EQ(results_of(key_run)["accuracy"], results_of(flag_run)["accuracy"]) << "the same run, the same figures";

  // --describe sees the plugin's keys and names the library they came from.
  const auto described =
      testing::run_train(std::string("--describe balanced_replay --plugin ") + SSCL_PLUGIN_BALANCED_REPLAY, dir);
  ASSERT_EQ(described.exit_code, 0) << described.err;
  EXPECT_NE(described.out.find("(plugin " + std::string(SSCL_PLUGIN_BALANCED_REPLAY) + ")"), std::string::npos)
      << described.out;
  EXPECT_NE(described.out.find("replay_batch = 8"), std::string::npos) << described.out;
}

TEST(Plugins, ABadPluginIsOneLineNamingItBeforeAnyRunDirectory) {
  TempDir dir;
  testing::write_text(dir / "notes.so", "not a library\n");
  struct Case {
    std::string path, needle;
  };
  const std::vector<Case> cases{
      {(dir / "missing.so").string(), "plugin " + (dir / "missing.so").string() + ": no such file"},
      {(dir / "notes.so").string(), "plugin " + (dir / "notes.so").string() + ": not a shared library"},
      {SSCL_PLUGIN_REGISTERS_NOTHING, std::string("plugin ") + SSCL_PLUGIN_REGISTERS_NOTHING + ": registers nothing"},
      {SSCL_PLUGIN_TAKES_DER,
       std::string("plugin ") + SSCL_PLUGIN_TAKES_DER + ": registers method 'der', a name already taken (built in)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    const auto run_dir = dir / "run";
    const auto p = testing::run_train(
        kExampleConfig + " --plugin '" + c.path + "' --work-dir '" + run_dir.string() + "'" + short_run(dir), dir);
    EXPECT_EQ(p.exit_code, 1);
    EXPECT_EQ(p.err.rfind("error: " + c.needle, 0), 0u) << p.err;
    EXPECT_EQ(std::count(p.err.begin(), p.err.end(), '\n'), 1) << p.err;
    EXPECT_FALSE(fs::exists(run_dir));
  }
}

// What a user of another repository does: install sscl, build the example with
// its own CMakeLists.txt against the package, train it with the installed sscl_train.
TEST(Plugins, TheExampleBuildsAgainstTheInstalledPackageAndTrains) {
  TempDir dir;
  const auto prefix = dir / "prefix";
  const auto install = testing::run_shell(std::string("'") + SSCL_CMAKE_COMMAND + "' --install '" + SSCL_BINARY_DIR +
                                              "' --prefix '" + prefix.string() + "'",
                                          dir);
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  ASSERT_TRUE(fs::exists(prefix / "include" / "sscl" / "core" / "method.h"));
  const auto build = dir / "plugin";
  const auto configure = testing::run_shell(
      std::string("'") + SSCL_CMAKE_COMMAND + "' -S '" + testing::config_path("examples/balanced_replay") + "' -B '" +
          build.string() + "' -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER='" + SSCL_CXX_COMPILER +
          "' -DCMAKE_PREFIX_PATH='" + prefix.string() + "'",
      dir);
  ASSERT_EQ(configure.exit_code, 0) << configure.out << configure.err;
  const auto compile =
      testing::run_shell(std::string("'") + SSCL_CMAKE_COMMAND + "' --build '" + build.string() + "'", dir);
  ASSERT_EQ(compile.exit_code, 0) << compile.out << compile.err;
  const auto run_dir = dir / "run";
  const auto p = testing::run_shell((prefix / "bin" / "sscl_train").string() + " " + kExampleConfig + " --plugin '" +
                                        (build / "libbalanced_replay.so").string() + "' --work-dir '" +
                                        run_dir.string() + "'" + short_run(dir),
                                    dir);
  expect_trained_the_example(p, run_dir);
}

}  // namespace
}  // namespace sscl
