// The example method of docs/extending.md, compiled into this program like a
// built-in: it registers, its replay term and figures are what its options say,
// and a run resumed from a mid-task checkpoint ends as the uninterrupted one
// (its declared state is all it needs).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/run_builder.h"
#include "tasks/split_semi_tasks.h"
#include "tests/tasks/synthetic_data.h"
#include "tests/test_util.h"

namespace sscl {
namespace {

struct Trained {
  RunState state;
  std::vector<std::pair<std::string, double>> stats;
  std::vector<torch::Tensor> parameters;
  std::vector<std::string> checkpoints;
};

Trained train_example(const testing::TempDir& dir, const std::string* resume_from = nullptr) {
  const Config config = Config::from_string(
      "[train]\nseed = 3\niters_per_task = 10\niters_per_virtual_epoch = 5\n"
      "[model]\nbackbone = \"small_cnn\"\n"
      "[method]\nname = \"balanced_replay\"\nbuffer_size = 8\nreplay_batch = 4\n"
      "[checkpoint]\ninterval = 5\n",
      "example.toml");
  SplitSemiOptions data;
  data.split.num_tasks = 2;
  data.split.labels_per_class = {6};
  data.batch_size = 4;
  data.uratio = 1;
  data.prefetch = false;
  Trained out;
  auto run = RunBuilder(config, dir.path())
                 .set_data(std::make_unique<SplitSemiTasks>(data, testing::synthetic_splits(4, 20, 1, 12), 3))
                 .set_checkpoint_writer([&out](const std::string& bytes, const CheckpointPosition&) {
                   out.checkpoints.push_back(bytes);
                   return std::string("memory");
                 })
                 .finish();
  out.state = resume_from ? run->trainer->resume(*resume_from) : run->trainer->run();
  out.stats = run->method->all_stats();
  for (const auto& p : run->model->parameters()) out.parameters.push_back(p.detach().clone());
  return out;
}

double stat(const Trained& t, const std::string& key) {
  for (const auto& [k, v] : t.stats)
    if (k == key) return v;
  ADD_FAILURE() << "no figure " << key;
  return -1;
}

TEST(BalancedReplayExample, TrainsReplaysAndResumesExactly) {
  ASSERT_TRUE(MethodRegistry::get().contains("balanced_replay"));
  testing::TempDir dir;
  const Trained plain = train_example(dir);
  // Batches of 4 into a memory of 8: nothing to replay at the first iteration,
  // then draws of 4 in each of the other 19.
  EXPECT_EQ(stat(plain, "replayed_images"), 76);
  EXPECT_EQ(stat(plain, "buffer_entries"), 8);
  ASSERT_EQ(plain.state.losses.size(), 2u);
  EXPECT_EQ(plain.state.losses[1].first, "replay");
  EXPECT_GT(plain.state.losses[1].second, 0.0);
  // Checkpoints at iterations 5, 10 (task end), 15, 20 (task end).
  ASSERT_EQ(plain.checkpoints.size(), 4u);
  testing::TempDir again;
  const Trained resumed = train_example(again, &plain.checkpoints[2]);  // task 1, iteration 5
  EXPECT_EQ(stat(resumed, "replayed_images"), 76);
  ASSERT_EQ(resumed.parameters.size(), plain.parameters.size());
  for (size_t i = 0; i < plain.parameters.size(); ++i)
    EXPECT_TRUE(resumed.parameters[i].equal(plain.parameters[i])) << "parameter " << i;
  EXPECT_EQ(resumed.state.task_il.at(1, 0), plain.state.task_il.at(1, 0));
}

}  // namespace
}  // namespace sscl
