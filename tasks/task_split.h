// Task building: the classes of each task, which training images are labeled (a
// seeded draw per class) and which are the unlabeled pool, and the evaluation
// images of each task. Index lists only; no pixels.
//
// Two kinds of sequence:
//   class-incremental (task-IL, class-IL): the classes are split into tasks, in
//     equal shares (data.num_tasks), given sizes (data.classes_per_task) or a
//     large first task and equal shares after it (data.first_task_classes: the
//     "B50-Inc10" protocols);
//   domain-incremental (domain-IL): every task has every class; task t's images
//     are domain t's (a block of the concatenated training and test sets).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/options.h"
#include "datasets/image_dataset.h"

namespace sscl {

struct TaskSplitOptions {
  std::optional<int> num_tasks;           // unset: the length of classes_per_task, else 5
  std::vector<int64_t> classes_per_task;  // empty: equal shares
  std::optional<int64_t> first_task_classes;
  std::vector<int64_t> labels_per_class{5};  // one entry for every task or one per task; -1: every image
  std::optional<double> labels_fraction;     // the labeled share of each class instead
  std::string class_order = "ascending";     // ascending | random (seeded permutation)
  std::vector<int64_t> class_order_list;     // an explicit order (data.class_order = [..])

  // data.num_tasks, data.classes_per_task, data.first_task_classes,
  // data.labels_per_class, data.labels_fraction, data.class_order.
  static void declare(OptionSpec<TaskSplitOptions>& o);
  // The number of tasks a class-incremental split of these options has.
  int tasks() const;
  // The labeled images per class of `task` (-1: every image), from
  // labels_per_class; ConfigError when the list's length is neither 1 nor `tasks`.
  int64_t labels_of_task(int task, int tasks) const;
};

struct TaskIndices {
  std::vector<int64_t> classes;    // global class ids
  std::vector<int64_t> labeled;    // training-set ids with a revealed label
  std::vector<int64_t> labels;     // their revealed labels (an oracle's may be wrong)
  std::vector<int64_t> unlabeled;  // the rest of the task's training images
  std::vector<int64_t> eval;       // test-set ids of the task's classes
};

// The classes of each task of a class-incremental split (the class order cut
// into the task sizes). ConfigError naming the key when the sizes do not fit.
std::vector<std::vector<int64_t>> class_split(int64_t num_classes, const TaskSplitOptions& options, uint64_t seed,
                                              const std::string& dataset);

// Class-incremental tasks. ConfigError when the classes do not split into the
// tasks or a class has fewer images than its label budget.
std::vector<TaskIndices> build_task_split(const DatasetSplits& data, const TaskSplitOptions& options, uint64_t seed);

// Domain-incremental tasks: task t holds every class, its images those of
// domains[t]; the label budget applies per class per domain.
std::vector<TaskIndices> build_domain_split(const DatasetSplits& data, const std::vector<DomainRange>& domains,
                                            const TaskSplitOptions& options, uint64_t seed);

}  // namespace sscl
