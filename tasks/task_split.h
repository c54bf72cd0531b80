// Split-Semi task building: the classes of each task, which training images are
// labeled (K per class by a seeded draw) and which are the unlabeled pool, and the
// evaluation images of each task. Index lists only; no pixels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/options.h"
#include "datasets/image_dataset.h"

namespace sscl {

struct TaskSplitOptions {
  int num_tasks = 5;
  int64_t labels_per_class = 5;           // -1: every training image is labeled
  std::string class_order = "ascending";  // ascending | random (seeded permutation)
  // data.num_tasks, data.labels_per_class, data.class_order.
  static void declare(OptionSpec<TaskSplitOptions>& o);
};

struct TaskIndices {
  std::vector<int64_t> classes;    // global class ids
  std::vector<int64_t> labeled;    // training-set ids with a revealed label
  std::vector<int64_t> labels;     // their revealed labels (an oracle's may be wrong)
  std::vector<int64_t> unlabeled;  // the rest of the task's training images
  std::vector<int64_t> eval;       // test-set ids of the task's classes
};

// Throws ConfigError when the classes do not divide into the tasks or a class has
// fewer than labels_per_class images.
std::vector<TaskIndices> build_task_split(const DatasetSplits& data, const TaskSplitOptions& options, uint64_t seed);

}  // namespace sscl
