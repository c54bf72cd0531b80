#include "tasks/task_split.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "core/error.h"
#include "core/random.h"

namespace sscl {

namespace {

// The ids in [begin, end) of `dataset`, by class.
std::vector<std::vector<int64_t>> ids_by_class(const ImageDataset& dataset, int64_t begin, int64_t end) {
  std::vector<std::vector<int64_t>> by_class(dataset.num_classes);
  const auto labels = dataset.labels.accessor<int64_t, 1>();
  for (int64_t i = begin; i < end; ++i) by_class[labels[i]].push_back(i);
  return by_class;
}

std::string list_text(const std::vector<int64_t>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

// How many of a class's `available` training images are labeled.
int64_t labeled_count(const TaskSplitOptions& options, int64_t budget, int64_t available, int64_t c,
                      const std::string& dataset) {
  if (options.labels_fraction) {
    if (*options.labels_fraction >= 1.0) return available;
    return std::clamp<int64_t>(std::llround(*options.labels_fraction * static_cast<double>(available)), 1, available);
  }
  if (budget == -1) return available;
  if (available < budget)
    throw ConfigError("data.labels_per_class = " + std::to_string(budget) + " but class " + std::to_string(c) + " of " +
                      dataset + " has " + std::to_string(available) + " training images");
  return budget;
}

// One task: `classes`, the images of each class drawn from `train` / `test`
// (by class), the first `labeled_count` of a seeded shuffle labeled.
TaskIndices make_task(const std::vector<int64_t>& classes, const std::vector<std::vector<int64_t>>& train,
                      const std::vector<std::vector<int64_t>>& test, const TaskSplitOptions& options, int64_t budget,
                      const std::string& dataset, const std::function<uint64_t(int64_t)>& class_seed) {
  TaskIndices task;
  task.classes = classes;
  for (int64_t c : classes) {
    const auto& ids = train[c];
    const int64_t k = labeled_count(options, budget, static_cast<int64_t>(ids.size()), c, dataset);
    if (k == static_cast<int64_t>(ids.size())) {
      task.labeled.insert(task.labeled.end(), ids.begin(), ids.end());
    } else {
      Rng rng(class_seed(c));
      auto shuffled = ids;
      rng.shuffle(shuffled);
      task.labeled.insert(task.labeled.end(), shuffled.begin(), shuffled.begin() + k);
      task.unlabeled.insert(task.unlabeled.end(), shuffled.begin() + k, shuffled.end());
    }
    task.eval.insert(task.eval.end(), test[c].begin(), test[c].end());
  }
  std::sort(task.labeled.begin(), task.labeled.end());
  std::sort(task.unlabeled.begin(), task.unlabeled.end());
  std::sort(task.eval.begin(), task.eval.end());
  return task;
}

void reveal_labels(const ImageDataset& train, std::vector<TaskIndices>& tasks) {
  const auto labels = train.labels.accessor<int64_t, 1>();
  for (auto& task : tasks)
    for (int64_t id : task.labeled) task.labels.push_back(labels[id]);
}

}  // namespace

void TaskSplitOptions::declare(OptionSpec<TaskSplitOptions>& o) {
  using O = TaskSplitOptions;
  o.key("num_tasks", &O::num_tasks,
        "tasks (class-IL/task-IL: equal shares of the classes; domain-IL: domains); unset: the length of "
        "classes_per_task, else 5")
      .above(0);
  o.key("classes_per_task", &O::classes_per_task, "the classes of each task, e.g. [50, 10, 10, 10, 10, 10]; []: equal")
      .above(0);
  o.key("first_task_classes", &O::first_task_classes,
        "classes of the first task; the rest split equally over the other num_tasks - 1 (B50-Inc10)")
      .above(0);
  o.key("labels_per_class", &O::labels_per_class,
        "labeled training images per class, for every task or a list with one entry per task; -1: every image")
      .scalar_or_list()
      .check(
          [](const std::vector<int64_t>& v) {
            return !v.empty() && std::all_of(v.begin(), v.end(), [](int64_t k) { return k == -1 || k > 0; });
          },
          "must be -1 (every image labeled) or > 0, as a number or a non-empty list");
  o.key("labels_fraction", &O::labels_fraction,
        "the labeled share of each class's training images instead of labels_per_class (mammoth's label_perc)")
      .check([](double f) { return f > 0.0 && f <= 1.0; }, "must be in (0, 1]");
  o.either("class_order", &O::class_order, &O::class_order_list,
           "ascending, random (a permutation drawn from the seed), or the list of class ids in order");
  o.rule([](const O& v, const ConfigSection& s) {
    if (!v.class_order_list.empty() || s.is_array("class_order")) {
      if (v.class_order_list.empty()) s.fail("class_order", "an explicit order needs at least one class");
    } else if (v.class_order != "ascending" && v.class_order != "random") {
      s.fail("class_order", "must be ascending, random or a list of class ids; got '" + v.class_order + "'");
    }
    if (!v.classes_per_task.empty() && v.first_task_classes)
      s.fail("first_task_classes", "give classes_per_task or first_task_classes, not both");
    if (!v.classes_per_task.empty() && v.num_tasks && *v.num_tasks != static_cast<int>(v.classes_per_task.size()))
      s.fail("num_tasks", std::to_string(*v.num_tasks) + " tasks, but data.classes_per_task lists " +
                              std::to_string(v.classes_per_task.size()) + "; make them agree or drop num_tasks");
    if (v.first_task_classes && v.tasks() < 2)
      s.fail("first_task_classes", "needs data.num_tasks >= 2 (the first task and the equal ones after it)");
    if (v.labels_fraction && s.has("labels_per_class"))
      s.fail("labels_fraction", "give labels_per_class or labels_fraction, not both");
  });
}

int TaskSplitOptions::tasks() const {
  if (!classes_per_task.empty()) return static_cast<int>(classes_per_task.size());
  return num_tasks.value_or(5);
}

int64_t TaskSplitOptions::labels_of_task(int task, int tasks) const {
  if (labels_per_class.size() == 1) return labels_per_class[0];
  if (static_cast<int>(labels_per_class.size()) != tasks)
    throw ConfigError("data.labels_per_class lists " + std::to_string(labels_per_class.size()) +
                      " budgets but there are " + std::to_string(tasks) + " tasks; give one number or one per task");
  return labels_per_class.at(task);
}

std::vector<std::vector<int64_t>> class_split(int64_t num_classes, const TaskSplitOptions& options, uint64_t seed,
                                              const std::string& dataset) {
  const std::string classes_text = std::to_string(num_classes) + " classes of " + dataset;
  std::vector<int64_t> order(num_classes);
  std::iota(order.begin(), order.end(), 0);
  if (!options.class_order_list.empty()) {
    auto sorted = options.class_order_list;
    std::sort(sorted.begin(), sorted.end());
    if (sorted != order)
      throw ConfigError("data.class_order = " + list_text(options.class_order_list) + " must list every class id 0.." +
                        std::to_string(num_classes - 1) + " of " + dataset + " exactly once");
    order = options.class_order_list;
  } else if (options.class_order == "random") {
    Rng rng(stream_seed(seed, "split.class_order"));
    rng.shuffle(order);
  } else if (options.class_order != "ascending") {
    throw ConfigError("data.class_order = '" + options.class_order + "': expected ascending, random or a list");
  }

  std::vector<int64_t> sizes = options.classes_per_task;
  const int tasks = options.tasks();
  if (!sizes.empty()) {
    const int64_t sum = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
    if (sum != num_classes)
      throw ConfigError("data.classes_per_task = " + list_text(sizes) + " sums to " + std::to_string(sum) +
                        ", not the " + classes_text);
  } else if (options.first_task_classes) {
    const int64_t first = *options.first_task_classes, rest = num_classes - first;
    if (rest <= 0 || rest % (tasks - 1) != 0)
      throw ConfigError("data.first_task_classes = " + std::to_string(first) + " leaves " + std::to_string(rest) +
                        " of the " + classes_text + ", which do not split equally into data.num_tasks - 1 = " +
                        std::to_string(tasks - 1) + " tasks");
    sizes.assign(tasks, rest / (tasks - 1));
    sizes[0] = first;
  } else {
    if (num_classes % tasks != 0)
      throw ConfigError("data.num_tasks = " + std::to_string(tasks) + " does not divide the " + classes_text);
    sizes.assign(tasks, num_classes / tasks);
  }
  std::vector<std::vector<int64_t>> out;
  int64_t begin = 0;
  for (int64_t size : sizes) {
    out.emplace_back(order.begin() + begin, order.begin() + begin + size);
    begin += size;
  }
  return out;
}

std::vector<TaskIndices> build_task_split(const DatasetSplits& data, const TaskSplitOptions& options, uint64_t seed) {
  const auto classes = class_split(data.train->num_classes, options, seed, data.name);
  const auto train_by_class = ids_by_class(*data.train, 0, data.train->size());
  const auto test_by_class = ids_by_class(*data.test, 0, data.test->size());
  const int tasks = static_cast<int>(classes.size());
  std::vector<TaskIndices> out;
  for (int t = 0; t < tasks; ++t)
    out.push_back(make_task(classes[t], train_by_class, test_by_class, options, options.labels_of_task(t, tasks),
                            data.name, [seed](int64_t c) { return stream_seed(seed, "split.labeled", c); }));
  reveal_labels(*data.train, out);
  return out;
}

std::vector<TaskIndices> build_domain_split(const DatasetSplits& data, const std::vector<DomainRange>& domains,
                                            const TaskSplitOptions& options, uint64_t seed) {
  if (!options.classes_per_task.empty() || options.first_task_classes)
    throw ConfigError(std::string("data.") + (options.first_task_classes ? "first_task_classes" : "classes_per_task") +
                      ": not for data.scenario = \"domain-il\" (every task has every class)");
  if (!options.class_order_list.empty() || options.class_order != "ascending")
    throw ConfigError("data.class_order: not for data.scenario = \"domain-il\" (every task has every class)");
  std::vector<int64_t> every_class(data.train->num_classes);
  std::iota(every_class.begin(), every_class.end(), 0);
  const int tasks = static_cast<int>(domains.size());
  std::vector<TaskIndices> out;
  for (int t = 0; t < tasks; ++t) {
    const DomainRange& d = domains[t];
    out.push_back(make_task(every_class, ids_by_class(*data.train, d.train_begin, d.train_end),
                            ids_by_class(*data.test, d.test_begin, d.test_end), options,
                            options.labels_of_task(t, tasks), data.name + " domain " + std::to_string(t),
                            [seed, t](int64_t c) { return stream_seed(seed, "split.domain_labeled", t, c); }));
  }
  reveal_labels(*data.train, out);
  return out;
}

}  // namespace sscl
