#include "tools/inference/infer_run.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>
#include <vector>

#include "core/device.h"
#include "core/environment.h"
#include "core/error.h"
#include "core/task_data.h"
#include "tools/exporting/rebuilt_run.h"
#include "tools/inference/exported_model.h"
#include "tools/inference/onnx_runtime.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Every test image's logits, label and task, in the order of the tasks.
struct Outputs {
  at::Tensor logits;  // [N, C]
  at::Tensor labels;  // [N]
  at::Tensor tasks;   // [N]
};

Outputs run_test_set(ExportedModel& model, const TaskData& data, int64_t batch_size) {
  std::vector<at::Tensor> logits, labels, tasks;
  for (int t = 0; t < data.num_tasks(); ++t)
    for (int64_t b = 0; b < data.num_eval_batches(t, batch_size); ++b) {
      const EvalBatch batch = data.eval_batch(t, b, batch_size);
      const auto ids = at::full({batch.images.size(0)}, t, at::kLong);
      logits.push_back(predict_logits(model, batch.images.to(at::kCPU), ids));
      labels.push_back(batch.labels.to(at::kCPU));
      tasks.push_back(ids);
    }
  check<Error>(!logits.empty(), "infer: the data has no test images");
  return {at::cat(logits), at::cat(labels), at::cat(tasks)};
}

// At most `limit` test images spread over the tasks, for the timings.
struct Sample {
  at::Tensor images;
  at::Tensor tasks;
};

Sample timing_sample(const TaskData& data, int64_t limit) {
  std::vector<at::Tensor> images, tasks;
  const int64_t per_task = std::max<int64_t>(1, (limit + data.num_tasks() - 1) / data.num_tasks());
  for (int t = 0; t < data.num_tasks() && limit > 0; ++t) {
    if (data.num_eval_batches(t, per_task) == 0) continue;
    auto batch = data.eval_batch(t, 0, per_task).images.to(at::kCPU);
    batch = batch.narrow(0, 0, std::min(limit, batch.size(0)));
    limit -= batch.size(0);
    images.push_back(batch);
    tasks.push_back(at::full({batch.size(0)}, t, at::kLong));
  }
  return {at::cat(images), at::cat(tasks)};
}

// Bool [tasks, classes]: the classes of each task.
at::Tensor task_masks(const std::vector<std::vector<int64_t>>& tasks, int64_t num_classes) {
  auto mask = at::zeros({static_cast<int64_t>(tasks.size()), num_classes}, at::kBool);
  for (size_t t = 0; t < tasks.size(); ++t)
    for (int64_t c : tasks[t]) mask[static_cast<int64_t>(t)][c] = true;
  return mask;
}

// The logits a scenario predicts from: task-IL keeps the classes of each row's
// task (a multi-head model has already set the others to -inf), class-IL all.
at::Tensor scenario_logits(const Outputs& out, const at::Tensor& masks, bool task_il) {
  if (!task_il) return out.logits;
  return out.logits.masked_fill(masks.index_select(0, out.tasks).logical_not(),
                                -std::numeric_limits<float>::infinity());
}

nlohmann::json accuracy_of(const at::Tensor& correct, const Outputs& out, int64_t num_tasks) {
  std::vector<double> per_task;
  for (int64_t t = 0; t < num_tasks; ++t) {
    const auto rows = out.tasks.eq(t);
    const double count = rows.sum().item<double>();
    per_task.push_back(count > 0 ? 100.0 * correct.logical_and(rows).sum().item<double>() / count : 0.0);
  }
  double mean = 0;
  for (double a : per_task) mean += a / static_cast<double>(per_task.size());
  return {{"mean", mean}, {"per_task", per_task}};
}

nlohmann::json accuracies(const ExportedModel& model, const Outputs& out, const at::Tensor& masks) {
  const auto num_tasks = static_cast<int64_t>(model.tasks.size());
  nlohmann::json result;
  result["task_il"] = accuracy_of(scenario_logits(out, masks, true).argmax(1).eq(out.labels), out, num_tasks);
  if (model.task_id_input) {
    result["class_il"] = nullptr;
    result["class_il_note"] = "the model takes each image's task id (one head per task): class-IL is not defined";
  } else {
    result["class_il"] = accuracy_of(out.logits.argmax(1).eq(out.labels), out, num_tasks);
  }
  return result;
}

// Nearest-rank percentile of sorted values.
double percentile(const std::vector<double>& sorted, double p) {
  const auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

nlohmann::json latency_json(std::vector<double> ms, int64_t warmup) {
  std::sort(ms.begin(), ms.end());
  double mean = 0;
  for (double v : ms) mean += v / static_cast<double>(ms.size());
  return {{"p50", percentile(ms, 50)}, {"p90", percentile(ms, 90)}, {"p99", percentile(ms, 99)}, {"mean", mean},
          {"images", ms.size()},       {"warmup", warmup}};
}

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// Milliseconds of each sample image through `run` at batch 1, after `warmup`
// untimed runs.
template <typename Run>
std::vector<double> time_each(const Sample& sample, int64_t warmup, Run&& run) {
  const int64_t n = sample.images.size(0);
  for (int64_t i = 0; i < warmup; ++i) run(sample.images.narrow(0, i % n, 1), sample.tasks.narrow(0, i % n, 1));
  std::vector<double> ms;
  for (int64_t i = 0; i < n; ++i) {
    const auto x = sample.images.narrow(0, i, 1).contiguous();
    const auto t = sample.tasks.narrow(0, i, 1).contiguous();
    const auto start = Clock::now();
    run(x, t);
    ms.push_back(elapsed_ms(start));
  }
  return ms;
}

nlohmann::json throughput(ExportedModel& model, const Sample& sample, const InferOptions& options) {
  const auto index = at::arange(options.throughput_batch, at::kLong).remainder(sample.images.size(0));
  const auto x = sample.images.index_select(0, index), t = sample.tasks.index_select(0, index);
  for (int64_t i = 0; i < std::min<int64_t>(options.warmup, 3); ++i) predict_logits(model, x, t);
  const auto start = Clock::now();
  for (int64_t i = 0; i < options.throughput_batches; ++i) predict_logits(model, x, t);
  const double seconds = elapsed_ms(start) / 1000.0;
  return {{"batch", options.throughput_batch},
          {"batches", options.throughput_batches},
          {"images_per_s", static_cast<double>(options.throughput_batch * options.throughput_batches) / seconds}};
}

nlohmann::json model_json(const ExportedModel& model) {
  std::vector<std::string> files;
  for (const auto& file : model.files) files.push_back(fs::absolute(file).lexically_normal().string());
  return {{"file", fs::absolute(model.file).lexically_normal().string()},
          {"files", files},
          {"bytes", model.bytes},
          {"format", model.entry.value("format", "")},
          {"precision", model.entry.value("precision", "")},
          {"backbone", model.info.value("backbone", "")},
          {"method", model.info.value("method", "")},
          {"multi_head", model.task_id_input}};
}

// The data's tasks must be the model's: the same classes in the same tasks, and
// the same image shape.
void check_data_matches(const TaskData& data, const ExportedModel& model, const std::string& source) {
  std::vector<std::vector<int64_t>> tasks;
  for (int t = 0; t < data.num_tasks(); ++t) tasks.push_back(data.classes(t));
  const InputShape shape = data.input_shape();
  const std::vector<int64_t> dims{shape.channels, shape.height, shape.width};
  if (data.num_classes() != model.num_classes || tasks != model.tasks)
    throw ConfigError("--data " + source + ": its tasks and classes differ from those of " + model.file.string() +
                      " (" + std::to_string(data.num_classes()) + " classes in " + std::to_string(tasks.size()) +
                      " tasks against " + std::to_string(model.num_classes) + " in " +
                      std::to_string(model.tasks.size()) + ")");
  if (dims != model.input_shape)
    throw ConfigError("--data " + source + ": its images are not of the shape " + model.file.string() + " takes");
}

void check_cloud_matches(const ExportedModel& edge, const ExportedModel& cloud) {
  const auto names = [](const ExportedModel& m) { return m.info.value("class_names", nlohmann::json()); };
  if (cloud.num_classes != edge.num_classes || cloud.tasks != edge.tasks || names(cloud) != names(edge))
    throw ConfigError("--cloud " + cloud.file.string() + ": its classes differ from the edge model's (" +
                      edge.file.string() + "); both must be trained on the same tasks");
  if (cloud.input_shape != edge.input_shape)
    throw ConfigError("--cloud " + cloud.file.string() + ": it takes images of another shape than the edge model");
}

fs::path data_config(const InferOptions& options, const ExportedModel& model) {
  fs::path source = options.data;
  if (source.empty()) {
    const std::string run_dir = model.info.value("run_dir", "");
    if (run_dir.empty()) throw ConfigError(model.file.string() + ": export.json names no run; give --data");
    source = run_dir;
  }
  std::error_code ec;
  if (fs::is_directory(source, ec)) source /= "config.toml";
  if (!fs::is_regular_file(source, ec))
    throw IoError(source.string() + ": no such config file (--data takes a run directory or a config)");
  return source;
}

nlohmann::json edge_cloud(ExportedModel& edge, ExportedModel& cloud, const Outputs& edge_out, const Outputs& cloud_out,
                          const Sample& sample, const Route& route, const InferOptions& options) {
  // Task-IL when the edge model was trained for it or either model needs the
  // task id; both then answer the same question.
  const bool task_il = edge.task_il || cloud.task_id_input;
  const auto masks = task_masks(edge.tasks, edge.num_classes);
  const auto edge_logits = scenario_logits(edge_out, masks, task_il);
  const auto probabilities = at::softmax(edge_logits.to(at::kDouble), 1);
  const auto edge_correct = edge_logits.argmax(1).eq(edge_out.labels);
  const auto cloud_correct = scenario_logits(cloud_out, masks, task_il).argmax(1).eq(edge_out.labels);
  const auto n = static_cast<double>(edge_out.labels.size(0));
  const int64_t image_bytes = edge.input_shape[0] * edge.input_shape[1] * edge.input_shape[2];

  nlohmann::json result;
  result["route"] = route_text(route);
  result["scenario"] = task_il ? "task-IL" : "class-IL";
  result["edge_accuracy"] = 100.0 * edge_correct.sum().item<double>() / n;
  result["cloud_accuracy"] = 100.0 * cloud_correct.sum().item<double>() / n;
  result["bytes_per_upload"] = image_bytes;
  result["bytes_note"] =
      "an upload is the image's raw 8-bit pixels (C x H x W bytes); the cloud answers a class index; network "
      "time is not in the latencies";
  const auto path_ms = [&](ExportedModel& m) {
    return time_each(sample, options.warmup,
                     [&](const at::Tensor& x, const at::Tensor& t) { predict_logits(m, x, t); });
  };
  const auto edge_ms = latency_json(path_ms(edge), options.warmup);
  const auto cloud_ms = latency_json(path_ms(cloud), options.warmup);
  result["latency_ms"] = {{"edge", edge_ms}, {"cloud", cloud_ms}};
  if (route.sweep) {
    nlohmann::json points = nlohmann::json::array();
    for (const SweepPoint& p : route_sweep(route.kind, probabilities, edge_correct, cloud_correct)) {
      points.push_back({{"threshold", p.threshold},
                        {"upload_share", p.upload_share},
                        {"accuracy", p.accuracy},
                        {"upload_bytes", static_cast<int64_t>(std::llround(p.upload_share * n)) * image_bytes},
                        {"mean_latency_ms_estimate",
                         edge_ms["mean"].get<double>() + p.upload_share * cloud_ms["mean"].get<double>()}});
    }
    result["sweep"] = points;
    result["sweep_note"] = "mean latency per point = edge mean + upload share x cloud mean, from the measured paths";
    return result;
  }
  const auto upload = upload_mask(route, probabilities);
  const int64_t uploads = upload.sum().item<int64_t>();
  result["collaborative_accuracy"] = 100.0 * at::where(upload, cloud_correct, edge_correct).sum().item<double>() / n;
  result["uploaded_images"] = uploads;
  result["upload_share"] = static_cast<double>(uploads) / n;
  result["upload_bytes"] = uploads * image_bytes;
  // The collaborative path as a device runs it: the edge model, its hardness, and
  // the cloud model for the images it routes there.
  const auto cut = hardness_cut(route);
  result["latency_ms"]["collaborative"] =
      latency_json(time_each(sample, options.warmup,
                             [&](const at::Tensor& x, const at::Tensor& t) {
                               auto logits = predict_logits(edge, x, t);
                               if (task_il)
                                 logits = logits.masked_fill(masks.index_select(0, t).logical_not(),
                                                             -std::numeric_limits<float>::infinity());
                               const auto h = hardness(route.kind, at::softmax(logits.to(at::kDouble), 1));
                               if (h.item<double>() > cut) predict_logits(cloud, x, t);
                             }),
                   options.warmup);
  return result;
}

}  // namespace

nlohmann::json infer(const InferOptions& options) {
  check<ConfigError>(options.threads > 0, "--threads must be positive");
  check<ConfigError>(options.latency_images > 0 && options.throughput_batch > 0 && options.throughput_batches > 0 &&
                         options.warmup >= 0,
                     "--latency-images, --throughput-batch and --throughput-batches must be positive");
  check<ConfigError>(options.cloud.empty() == !options.route.has_value(), "--cloud and --route go together");
  ExportedModel edge = load_exported_model(options.model);
  std::optional<ExportedModel> cloud;
  if (!options.cloud.empty()) {
    cloud = load_exported_model(options.cloud);
    check_cloud_matches(edge, *cloud);
  }
  const fs::path config_file = data_config(options, edge);
  const auto rebuilt = rebuild_run(config_file, config_file.parent_path().filename().string());
  const TaskData& data = *rebuilt->run->data;
  check_data_matches(data, edge, config_file.string());
  // The accuracy passes run at the config's train.threads (set by rebuild_run);
  // the timings at --threads, set once those passes are done.
  const Outputs out = run_test_set(edge, data, options.eval_batch);
  std::optional<Outputs> cloud_out;
  if (cloud) cloud_out = run_test_set(*cloud, data, options.eval_batch);
  const int threads = set_torch_threads(options.threads);
  OnnxRuntime::set_threads(threads);
  const std::string blas_threads = set_blas_threads(options.threads);

  nlohmann::json result;
  result["model"] = model_json(edge);
  result["runtime"] = {{"engine", runtime_name(edge)},    {"libtorch", libtorch_version()}, {"threads", threads},
                       {"blas", loaded_blas_libraries()}, {"blas_threads", blas_threads},   {"cpu", cpu_model()},
                       {"sscl_commit", git_commit()}};
  const auto masks = task_masks(edge.tasks, edge.num_classes);
  result["data"] = {{"config", fs::absolute(config_file).lexically_normal().string()},
                    {"test_images", out.labels.size(0)},
                    {"tasks", data.num_tasks()}};
  result["accuracy"] = accuracies(edge, out, masks);
  const Sample sample = timing_sample(data, options.latency_images);
  result["latency_batch_1_ms"] = latency_json(
      time_each(sample, options.warmup, [&](const at::Tensor& x, const at::Tensor& t) { predict_logits(edge, x, t); }),
      options.warmup);
  result["throughput"] = throughput(edge, sample, options);
  if (cloud) {
    result["cloud"] = {{"model", model_json(*cloud)}, {"accuracy", accuracies(*cloud, *cloud_out, masks)}};
    result["edge_cloud"] = edge_cloud(edge, *cloud, out, *cloud_out, sample, *options.route, options);
  }
  result["peak_rss_mib"] = peak_rss_mib();
  result["peak_rss_note"] = "of the whole process: the data, the model(s) and every pass above";
  return result;
}

std::string infer_table(const nlohmann::json& r) {
  std::ostringstream os;
  os << std::fixed;
  const auto acc = [](const nlohmann::json& a) {
    return a.is_null() ? std::string("-")
                       : (std::ostringstream() << std::fixed << std::setprecision(2) << a["mean"].get<double>()).str();
  };
  const auto& m = r["model"];
  os << "model       " << m["file"].get<std::string>() << " (" << m["format"].get<std::string>() << " "
     << m["precision"].get<std::string>() << ", " << m["backbone"].get<std::string>() << ", "
     << m["bytes"].get<int64_t>() << " bytes"
     << (m["files"].size() > 1 ? " in " + std::to_string(m["files"].size()) + " files, one per task" : "") << ")\n";
  os << "runtime     " << r["runtime"]["engine"].get<std::string>() << ", " << r["runtime"]["threads"].get<int>()
     << " thread(s), " << r["runtime"]["cpu"].get<std::string>() << "\n";
  os << "data        " << r["data"]["test_images"].get<int64_t>() << " test images in " << r["data"]["tasks"].get<int>()
     << " tasks\n";
  os << std::setprecision(2) << "accuracy    task-IL " << acc(r["accuracy"]["task_il"]) << " %, class-IL "
     << acc(r["accuracy"]["class_il"]) << " %\n";
  const auto& l = r["latency_batch_1_ms"];
  os << std::setprecision(3) << "latency     batch 1: p50 " << l["p50"].get<double>() << " ms, p90 "
     << l["p90"].get<double>() << " ms, p99 " << l["p99"].get<double>() << " ms (" << l["images"].get<int64_t>()
     << " images)\n";
  os << std::setprecision(1) << "throughput  batch " << r["throughput"]["batch"].get<int64_t>() << ": "
     << r["throughput"]["images_per_s"].get<double>() << " images/s\n";
  os << "peak RSS    " << r["peak_rss_mib"].get<double>() << " MiB\n";
  if (!r.contains("edge_cloud")) return os.str();
  const auto& e = r["edge_cloud"];
  os << std::setprecision(2) << "edge-cloud  route " << e["route"].get<std::string>() << " ("
     << e["scenario"].get<std::string>() << "): edge " << e["edge_accuracy"].get<double>() << " %, cloud "
     << e["cloud_accuracy"].get<double>() << " %";
  if (e.contains("sweep")) {
    os << "\n  threshold  upload %  accuracy %\n";
    for (const auto& p : e["sweep"])
      os << "  " << std::setw(9) << std::setprecision(4) << p["threshold"].get<double>() << "  " << std::setw(8)
         << std::setprecision(1) << 100.0 * p["upload_share"].get<double>() << "  " << std::setw(10)
         << std::setprecision(2) << p["accuracy"].get<double>() << "\n";
  } else {
    os << ", collaborative " << e["collaborative_accuracy"].get<double>() << " % with " << std::setprecision(1)
       << 100.0 * e["upload_share"].get<double>() << " % uploaded (" << e["upload_bytes"].get<int64_t>()
       << " bytes); collaborative p50 " << std::setprecision(3) << e["latency_ms"]["collaborative"]["p50"].get<double>()
       << " ms\n";
  }
  return os.str();
}

}  // namespace sscl
