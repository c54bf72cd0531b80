// The checkpoint folder (names, order, keeping the last K), the plain state's
// round trip and atomic writes that fail without touching the file they replace.
#include "core/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <cmath>
#include <csignal>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tests/test_util.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(CheckpointDir, KeepsTheNewestKAndOrdersAStopAtATaskStartAfterThatTasksEnd) {
  testing::TempDir dir;
  const CheckpointDir checkpoints(dir.path(), 2);
  checkpoints.prepare();
  EXPECT_TRUE(checkpoints.list().empty());
  checkpoints.write("a", {0, 5, false, 5});
  checkpoints.write("b", {0, 10, true, 10});
  // A stop right after task 1's before_task: same global iteration, newer.
  const auto newest = checkpoints.write("c", {1, 0, false, 10});
  const auto files = checkpoints.list();
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0], newest);
  EXPECT_EQ(files[0].filename(), "ckpt_000000010.pt");
  EXPECT_EQ(files[1].filename(), "ckpt_000000010_task_end.pt");
  EXPECT_EQ(read(files[0]), "c");
  EXPECT_FALSE(fs::exists(dir / "checkpoints" / "ckpt_000000005.pt")) << "older than the last 2";
  // Leftovers of a killed write are not checkpoints.
  testing::write_text(dir / "checkpoints" / "ckpt_000000099.pt.tmp", "partial");
  EXPECT_EQ(checkpoints.list().size(), 2u);
}

TEST(CheckpointOptions, KeysAreCheckedByName) {
  const auto config = Config::from_string("[checkpoint]\ninterval = -1\n", "c.toml");
  try {
    read_options<CheckpointOptions>(config.section("checkpoint"));
    FAIL() << "a negative interval was taken";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint.interval"), std::string::npos) << e.what();
  }
  const auto keep = Config::from_string("[checkpoint]\nkeep_last = 0\n", "c.toml");
  EXPECT_THROW(read_options<CheckpointOptions>(keep.section("checkpoint")), ConfigError);
}

TEST(CheckpointState, RunStateRoundTripsWithNotEvaluatedEntries) {
  RunState s;
  s.num_tasks = 2;
  s.iters_per_task = 7;
  s.iters_per_virtual_epoch = 3;
  s.task = 1;
  s.iter = 4;
  s.epoch = 1;
  s.global_iter = 12;
  s.lr = 0.0125;
  s.losses = {{"sup", 0.5}, {"unsup", 0.25}};
  s.loss = 0.75;
  s.last_timing.data_ms = 1.5;
  s.task_timings.resize(2);
  s.task_timings[0].iteration_ms = {1.25f, 2.5f};
  s.task_timings[0].sum.forward_ms = 3.0;
  s.task_timings[0].train_s = 9.0;
  s.task_il = AccuracyMatrix(2);
  s.task_il.set(0, 0, 91.25);
  s.class_il = AccuracyMatrix(2);
  s.class_il.set(0, 0, 88.5);
  const RunState r = run_state_from_json(run_state_to_json(s));
  EXPECT_EQ(r.global_iter, 12);
  EXPECT_EQ(r.lr, 0.0125);
  EXPECT_EQ(r.losses, s.losses);
  EXPECT_EQ(r.task_timings[0].iteration_ms, s.task_timings[0].iteration_ms);
  EXPECT_EQ(r.task_timings[0].sum.forward_ms, 3.0);
  EXPECT_EQ(r.last_timing.data_ms, 1.5);
  EXPECT_EQ(r.task_il.at(0, 0), 91.25);
  EXPECT_FALSE(r.task_il.has(1, 0));
  EXPECT_TRUE(std::isnan(r.class_il.at(1, 1)));
  const CheckpointPosition p = position_from_json(position_to_json({1, 4, false, 12}));
  EXPECT_EQ(p.task, 1);
  EXPECT_EQ(p.next_iter, 4);
  EXPECT_FALSE(p.evaluated);
}

TEST(CheckpointState, GeneratorStatesComeBack) {
  torch::manual_seed(5);
  torch::serialize::OutputArchive out;
  save_generator_states(out);
  const auto expected = torch::rand({4});
  std::ostringstream bytes;
  out.save_to(bytes);
  torch::rand({100});  // move on
  torch::serialize::InputArchive in;
  const std::string data = bytes.str();
  in.load_from(data.data(), data.size());
  load_generator_states(in);
  EXPECT_TRUE(torch::rand({4}).equal(expected));
}

// A write that fails (here: past the file size limit, as on a full disk) throws
// naming the file, leaves the old content and no temporary file.
TEST(AtomicFile, AFailedWriteLeavesTheOldFileWhole) {
  testing::TempDir dir;
  const auto file = dir / "ckpt.pt";
  write_file_atomic(file, "old");
  rlimit old_limit{};
  getrlimit(RLIMIT_FSIZE, &old_limit);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old_limit;
  small.rlim_cur = 1000;
  setrlimit(RLIMIT_FSIZE, &small);
  std::string message;
  try {
    write_file_atomic(file, std::string(5000, 'x'));
  } catch (const IoError& e) {
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(message.find(file.string() + ": write failed: File too large"), std::string::npos) << message;
  EXPECT_EQ(read(file), "old");
  EXPECT_FALSE(fs::exists(file.string() + ".tmp"));
}

}  // namespace
}  // namespace sscl
