#include "tools/results.h"

#include <ATen/core/Tensor.h>
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "core/environment.h"

namespace sscl {

namespace {

double median(std::vector<float> v) {
  if (v.empty()) return NAN;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + mid, v.end());
  if (v.size() % 2) return v[mid];
  const float upper = v[mid];
  return (upper + *std::max_element(v.begin(), v.begin() + mid)) / 2.0;
}

double mean(const std::vector<float>& v) {
  return v.empty() ? NAN : std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}

std::vector<float> all_iterations(const RunState& s) {
  std::vector<float> all;
  for (const auto& t : s.task_timings) all.insert(all.end(), t.iteration_ms.begin(), t.iteration_ms.end());
  return all;
}

nlohmann::json json_number(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

nlohmann::json accuracy_json(const AccuracyMatrix& m) {
  auto matrix = nlohmann::json::array();
  for (int i = 0; i < m.num_tasks(); ++i) {
    auto row = nlohmann::json::array();
    for (int j = 0; j < m.num_tasks(); ++j) row.push_back(json_number(m.at(i, j)));
    matrix.push_back(row);
  }
  return {{"matrix", matrix},
          {"final_average", json_number(m.average_accuracy())},
          {"mean_average", json_number(m.mean_average_accuracy())},
          {"forgetting", json_number(m.forgetting())},
          {"bwt", json_number(m.backward_transfer())}};
}

std::string matrix_table(const AccuracyMatrix& m, const std::string& title) {
  std::string out = fmt::format("{:<14}", title);
  for (int j = 0; j < m.num_tasks(); ++j) out += fmt::format("{:>8}", fmt::format("T{}", j + 1));
  out += fmt::format("{:>8}\n", "avg");
  for (int i = 0; i < m.num_tasks(); ++i) {
    out += fmt::format("{:<14}", fmt::format("after T{}", i + 1));
    for (int j = 0; j < m.num_tasks(); ++j)
      out += m.has(i, j) ? fmt::format("{:>8.2f}", m.at(i, j)) : fmt::format("{:>8}", "-");
    out += fmt::format("{:>8.2f}\n", m.average_accuracy(i));
  }
  return out;
}

}  // namespace

nlohmann::json split_json(const TaskData& data) {
  nlohmann::json tasks = nlohmann::json::array();
  for (int t = 0; t < data.num_tasks(); ++t) {
    const LabeledSet labeled = data.labeled_set(t);
    std::map<int64_t, int64_t> per_class;
    for (int64_t c : data.classes(t)) per_class[c] = 0;
    const auto labels = labeled.labels.contiguous();
    for (int64_t i = 0; i < labels.numel(); ++i) ++per_class[labels.data_ptr<int64_t>()[i]];
    nlohmann::json counts = nlohmann::json::object();
    for (const auto& [c, n] : per_class) counts[std::to_string(c)] = n;
    tasks.push_back({{"classes", data.classes(t)},
                     {"labeled", labeled.ids.numel()},
                     {"labeled_per_class", counts},
                     {"unlabeled", data.num_unlabeled(t)}});
  }
  return {{"tasks", tasks}};
}

nlohmann::json results_json(const RunState& s, const RunSummary& r) {
  nlohmann::json j;
  j["name"] = r.name;
  j["method"] = r.method;
  j["dataset"] = r.dataset;
  j["backbone"] = r.backbone;
  j["scenario"] = r.scenario;
  j["seed"] = r.seed;
  j["num_tasks"] = s.num_tasks;
  j["iters_per_task"] = s.iters_per_task;
  j["accuracy"]["task_il"] = accuracy_json(s.task_il);
  j["accuracy"]["class_il"] = accuracy_json(s.class_il);

  const auto all = all_iterations(s);
  IterationTiming parts;
  double train_s = 0, eval_s = 0;
  auto tasks = nlohmann::json::array();
  for (const auto& t : s.task_timings) {
    parts.data_ms += t.sum.data_ms;
    parts.forward_ms += t.sum.forward_ms;
    parts.backward_ms += t.sum.backward_ms;
    parts.other_ms += t.sum.other_ms;
    parts.comm_ms += t.sum.comm_ms;
    train_s += t.train_s;
    eval_s += t.eval_s;
    tasks.push_back({{"iters", t.iteration_ms.size()},
                     {"train_s", t.train_s},
                     {"eval_s", t.eval_s},
                     {"ms_per_iter_median", json_number(median(t.iteration_ms))},
                     {"ms_per_iter_mean", json_number(mean(t.iteration_ms))}});
  }
  const double n = std::max<size_t>(all.size(), 1);
  j["timing"] = {{"ms_per_iter_median", json_number(median(all))},
                 {"ms_per_iter_mean", json_number(mean(all))},
                 {"ms_per_iter_parts",
                  {{"data", parts.data_ms / n},
                   {"forward_and_loss", parts.forward_ms / n},
                   {"backward_and_step", parts.backward_ms / n},
                   {"other", parts.other_ms / n},
                   {"communication", parts.comm_ms / n}}},
                 {"tasks", tasks},
                 {"train_s", train_s},
                 {"eval_s", eval_s},
                 {"wall_s", r.wall_s}};
  j["memory"] = {{"peak_rss_mib", peak_rss_mib()},
                 {"peak_gpu_mib", r.peak_device_bytes < 0 ? nlohmann::json(nullptr)
                                                          : nlohmann::json(double(r.peak_device_bytes) / (1 << 20))}};
  nlohmann::json precision = r.precision.is_null() ? nlohmann::json{{"amp", "none"}} : r.precision;
  if (s.amp_loss_scale > 0) {
    precision["loss_scale"] = s.amp_loss_scale;
    precision["skipped_steps"] = s.amp_skipped_steps;
  }
  j["precision"] = precision;
  j["method_stats"] = nlohmann::json::object();
  for (const auto& [key, value] : r.method_stats) j["method_stats"][key] = json_number(value);
  if (!r.active_learning.is_null()) j["active_learning"] = r.active_learning;
  if (!r.resumes.is_null()) j["resumes"] = r.resumes;
  if (!r.split.is_null()) j["split"] = r.split;
  if (!r.pretrained.is_null()) j["pretrained"] = r.pretrained;
  if (!r.fine_tune.is_null()) j["fine_tune"] = r.fine_tune;
  if (!s.state_fingerprints.empty()) j["state_fingerprints"] = s.state_fingerprints;
  j["environment"] = {{"sscl_version", sscl_version()},
                      {"git_commit", git_commit()},
                      {"libtorch_version", libtorch_version()},
                      {"device", r.device},
                      {"threads", r.threads},
                      {"world_size", r.world_size},
                      {"backend", r.backend},
                      {"blas", r.blas},
                      {"blas_threads", r.blas_threads},
                      {"cpu", cpu_model()},
                      {"config_hash", r.config_hash}};
  return j;
}

std::string results_table(const RunState& s, const RunSummary& r) {
  std::string out = fmt::format("\n{} | {} on {} ({}), {} task(s) x {} iterations, seed {}\n", r.name, r.method,
                                r.dataset, r.backbone, s.num_tasks, s.iters_per_task, r.seed);
  out += matrix_table(s.task_il, "task-IL (%)");
  out += matrix_table(s.class_il, "class-IL (%)");
  auto metric = [](double v) { return std::isnan(v) ? std::string("n/a") : fmt::format("{:.2f}", v); };
  out += fmt::format("{:<26}{:>10}{:>10}\n", "", "task-IL", "class-IL");
  out += fmt::format("{:<26}{:>10}{:>10}\n", "final average accuracy", metric(s.task_il.average_accuracy()),
                     metric(s.class_il.average_accuracy()));
  out += fmt::format("{:<26}{:>10}{:>10}\n", "mean average accuracy", metric(s.task_il.mean_average_accuracy()),
                     metric(s.class_il.mean_average_accuracy()));
  out += fmt::format("{:<26}{:>10}{:>10}\n", "forgetting", metric(s.task_il.forgetting()),
                     metric(s.class_il.forgetting()));
  out += fmt::format("{:<26}{:>10}{:>10}\n", "backward transfer", metric(s.task_il.backward_transfer()),
                     metric(s.class_il.backward_transfer()));
  if (r.scenario == "domain-il")
    out += "domain-IL: one head over every class, so the task-IL and class-IL figures are the same accuracy\n";
  const auto all = all_iterations(s);
  out +=
      fmt::format("ms/iter: median {:.2f}, mean {:.2f} | wall {:.1f} s | peak RSS {:.0f} MiB | {} thread(s), {} ({})\n",
                  median(all), mean(all), r.wall_s, peak_rss_mib(), r.threads, r.blas, r.blas_threads);
  return out;
}

}  // namespace sscl
