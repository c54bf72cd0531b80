#include "tasks/task_split.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/random.h"

namespace sscl {

namespace {

std::vector<std::vector<int64_t>> ids_by_class(const ImageDataset& dataset) {
  std::vector<std::vector<int64_t>> by_class(dataset.num_classes);
  const auto labels = dataset.labels.accessor<int64_t, 1>();
  for (int64_t i = 0; i < dataset.size(); ++i) by_class[labels[i]].push_back(i);
  return by_class;
}

}  // namespace

void TaskSplitOptions::declare(OptionSpec<TaskSplitOptions>& o) {
  using O = TaskSplitOptions;
  o.key("num_tasks", &O::num_tasks, "tasks, each an equal share of the classes").above(0);
  o.key("labels_per_class", &O::labels_per_class, "labeled training images per class; -1: every image")
      .check([](int64_t k) { return k == -1 || k > 0; }, "must be -1 (every image labeled) or > 0");
  o.key("class_order", &O::class_order, "ascending, or random: a permutation drawn from the seed")
      .one_of({"ascending", "random"});
}

std::vector<TaskIndices> build_task_split(const DatasetSplits& data, const TaskSplitOptions& options, uint64_t seed) {
  const int64_t num_classes = data.train->num_classes;
  if (options.num_tasks <= 0 || num_classes % options.num_tasks != 0)
    throw ConfigError("data.num_tasks = " + std::to_string(options.num_tasks) + " does not divide the " +
                      std::to_string(num_classes) + " classes of " + data.name);
  if (options.labels_per_class == 0 || options.labels_per_class < -1)
    throw ConfigError("data.labels_per_class must be -1 (all labeled) or > 0, got " +
                      std::to_string(options.labels_per_class));

  std::vector<int64_t> order(num_classes);
  std::iota(order.begin(), order.end(), 0);
  if (options.class_order == "random") {
    Rng rng(stream_seed(seed, "split.class_order"));
    rng.shuffle(order);
  } else if (options.class_order != "ascending") {
    throw ConfigError("data.class_order = '" + options.class_order + "': expected ascending or random");
  }

  const auto train_by_class = ids_by_class(*data.train);
  const auto test_by_class = ids_by_class(*data.test);
  const int64_t per_task = num_classes / options.num_tasks;
  std::vector<TaskIndices> tasks(options.num_tasks);
  for (int t = 0; t < options.num_tasks; ++t) {
    TaskIndices& task = tasks[t];
    task.classes.assign(order.begin() + t * per_task, order.begin() + (t + 1) * per_task);
    for (int64_t c : task.classes) {
      const auto& ids = train_by_class[c];
      if (options.labels_per_class == -1) {
        task.labeled.insert(task.labeled.end(), ids.begin(), ids.end());
      } else {
        if (static_cast<int64_t>(ids.size()) < options.labels_per_class)
          throw ConfigError("data.labels_per_class = " + std::to_string(options.labels_per_class) + " but class " +
                            std::to_string(c) + " of " + data.name + " has " + std::to_string(ids.size()) +
                            " training images");
        Rng rng(stream_seed(seed, "split.labeled", c));
        auto shuffled = ids;
        rng.shuffle(shuffled);
        task.labeled.insert(task.labeled.end(), shuffled.begin(), shuffled.begin() + options.labels_per_class);
        task.unlabeled.insert(task.unlabeled.end(), shuffled.begin() + options.labels_per_class, shuffled.end());
      }
      task.eval.insert(task.eval.end(), test_by_class[c].begin(), test_by_class[c].end());
    }
    std::sort(task.labeled.begin(), task.labeled.end());
    std::sort(task.unlabeled.begin(), task.unlabeled.end());
    std::sort(task.eval.begin(), task.eval.end());
    const auto labels = data.train->labels.accessor<int64_t, 1>();
    for (int64_t id : task.labeled) task.labels.push_back(labels[id]);
  }
  return tasks;
}

}  // namespace sscl
