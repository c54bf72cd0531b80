// A run built by the RunBuilder, as the tools build one, on the synthetic
// 4-class data in 2 tasks (no dataset files): the way method tests train a
// method end to end. The config names the method ([method]) and anything else;
// the data's options are the test's.
#pragma once

#include <memory>
#include <string>

#include "core/run_builder.h"
#include "tasks/split_semi_tasks.h"
#include "tests/tasks/synthetic_data.h"
#include "tests/test_util.h"

namespace sscl::testing {

// 2 tasks of the 4 synthetic classes, `labels_per_class` labeled, batches of 4
// labeled and 4 * uratio unlabeled images.
inline SplitSemiOptions small_split(int64_t labels_per_class = 3, int64_t uratio = 2) {
  SplitSemiOptions o;
  o.split.num_tasks = 2;
  o.split.labels_per_class = {labels_per_class};
  o.batch_size = 4;
  o.uratio = uratio;
  return o;
}

// `config` must outlive the run; its hooks write under `dir`.
inline std::unique_ptr<Run> build_run(const Config& config, const TempDir& dir,
                                      const SplitSemiOptions& data = small_split(),
                                      std::optional<CheckpointHook::Writer> checkpoints = std::nullopt) {
  RunBuilder builder(config, dir.path());
  builder.set_data(std::make_unique<SplitSemiTasks>(data, synthetic_splits(4, 20, 1, 12), 0));
  if (checkpoints) builder.set_checkpoint_writer(*checkpoints);
  return builder.finish();
}

}  // namespace sscl::testing
