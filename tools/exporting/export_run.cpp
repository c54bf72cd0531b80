#include "tools/exporting/export_run.h"

#include <ATen/ATen.h>
#include <torch/serialize.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/environment.h"
#include "core/error.h"
#include "core/nn/pretrained.h"
#include "core/nn/state_dict_file.h"
#include "core/scenario.h"
#include "tasks/split_semi_tasks.h"
#include "tools/exporting/int8_export.h"
#include "tools/exporting/onnx_export.h"
#include "tools/exporting/rebuilt_run.h"
#include "tools/exporting/torchscript_export.h"
#include "tools/inference/onnx_runtime.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;

// Refused above this times max(1, the largest |logit|): float32 keeps about 7
// digits, and folding BatchNorm into a layer rounds differently from applying it.
constexpr double kTraceTolerance = 1e-5;
// The goal for ONNX run by OpenCV against LibTorch: OpenCV's kernels
// sum in another order (and with other instructions) than LibTorch's.
constexpr double kOnnxTolerance = 1e-4;

struct TraceCheck {
  double max_abs_difference = 0;
  double max_abs_logit = 0;  // of the eager model
};

// What the method predicts with when it is not the network's argmax.
std::string prediction_note(const std::string& method_label) {
  const std::string name = method_label.substr(0, method_label.find('+'));
  if (name == "icarl")
    return "iCaRL predicts by the nearest mean of its exemplars' features; the export holds the network and its "
           "linear head only, whose argmax is not iCaRL's prediction";
  if (name == "ccic")
    return "CCIC predicts by k-NN over its feature memory; the export holds the network and its linear head only, "
           "whose argmax is not CCIC's prediction";
  return "";
}

// Test images of every task, at most `limit` in all, spread over the tasks,
// with each image's task id and label.
struct CheckSet {
  at::Tensor images;
  at::Tensor task_ids;  // int64 [N]
  at::Tensor labels;    // int64 [N]; undefined for calibration images
};

CheckSet check_set(const TaskData& data, int64_t limit) {
  std::vector<at::Tensor> images, ids, labels;
  const int64_t per_task = std::max<int64_t>(1, limit / data.num_tasks());
  for (int t = 0; t < data.num_tasks() && limit > 0; ++t) {
    if (data.num_eval_batches(t, per_task) == 0) continue;
    const auto batch = data.eval_batch(t, 0, per_task);
    const int64_t n = std::min(limit, batch.images.size(0));
    limit -= n;
    ids.push_back(at::full({n}, t, at::kLong));
    images.push_back(batch.images.narrow(0, 0, n).to(at::kCPU));
    labels.push_back(batch.labels.narrow(0, 0, n).to(at::kCPU, at::kLong));
  }
  check<Error>(!images.empty(), "export: the run's data has no test images to check the export on");
  return {at::cat(images), at::cat(ids), at::cat(labels)};
}

// Training images of every task for int8 calibration, at most `limit` in all,
// evenly spaced over each task's labeled and unlabeled images, unaugmented and
// normalised as in training; with each image's task id.
CheckSet calibration_set(const TaskData& data, int64_t limit) {
  std::vector<at::Tensor> images, ids;
  const int64_t per_task = std::max<int64_t>(1, limit / data.num_tasks());
  for (int t = 0; t < data.num_tasks() && limit > 0; ++t) {
    const auto unlabeled = data.unlabeled_ids(t);
    const auto pool = at::cat({data.labeled_set(t).ids.to(at::kCPU, at::kLong), at::tensor(unlabeled, at::kLong)});
    const int64_t n = std::min({per_task, limit, pool.size(0)});
    if (n == 0) continue;
    limit -= n;
    const auto picked = pool.index_select(0, (at::arange(n, at::kLong) * pool.size(0)).div(n, "floor"));
    images.push_back(data.views(data.raw_images(picked), View::kPlain, /*seed=*/0));
    ids.push_back(at::full({n}, t, at::kLong));
  }
  check<Error>(!images.empty(), "export --int8: the run's data has no training images to calibrate on");
  return {at::cat(images), at::cat(ids), {}};
}

// Largest |traced - eager| over the check set, run through the traced model in
// batches of `batch`. `task_mask` [tasks, classes] (multi-head models): the
// traced model takes the task ids, and must give -inf exactly at the classes
// outside each row's task.
TraceCheck trace_difference(torch::jit::Module& module, Classifier& model, const CheckSet& set,
                            const at::Tensor& task_mask, int64_t batch) {
  torch::NoGradGuard no_grad;
  TraceCheck result;
  for (int64_t start = 0; start < set.images.size(0); start += batch) {
    const int64_t n = std::min(batch, set.images.size(0) - start);
    const auto x = set.images.narrow(0, start, n);
    const auto eager = model->forward(x);
    at::Tensor traced, outside;
    if (task_mask.defined()) {
      const auto ids = set.task_ids.narrow(0, start, n);
      traced = run_traced(module, x, ids);
      outside = task_mask.index_select(0, ids).logical_not();
      check<Error>(at::isinf(traced).equal(outside),
                   "export: the traced model's -inf logits are not the classes outside each row's task");
    } else {
      traced = run_traced(module, x);
      outside = at::zeros_like(eager, at::kBool);
    }
    result.max_abs_difference =
        std::max(result.max_abs_difference, (traced - eager).masked_fill(outside, 0).abs().max().item<double>());
    result.max_abs_logit = std::max(result.max_abs_logit, eager.masked_fill(outside, 0).abs().max().item<double>());
  }
  return result;
}

// The int8 model against the fp32 trace on the check set: how often their
// predictions agree and each one's accuracy, class-IL (argmax over every class;
// none for a multi-head file, which predicts within the row's task) and task-IL
// (argmax within the row's task, `task_mask` [tasks, classes]), and the logit
// differences.
nlohmann::json compare_int8(torch::jit::Module& fp32, torch::jit::Module& int8, const CheckSet& set,
                            const at::Tensor& task_mask, bool task_id_input) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> fp32_logits, int8_logits;
  for (int64_t start = 0; start < set.images.size(0); start += 64) {
    const int64_t n = std::min<int64_t>(64, set.images.size(0) - start);
    const auto x = set.images.narrow(0, start, n);
    const auto ids = task_id_input ? set.task_ids.narrow(0, start, n) : at::Tensor();
    fp32_logits.push_back(run_traced(fp32, x, ids));
    int8_logits.push_back(run_traced(int8, x, ids));
  }
  const auto a = at::cat(fp32_logits), b = at::cat(int8_logits);
  const auto outside = task_mask.index_select(0, set.task_ids).logical_not();
  const auto within = [&](const at::Tensor& logits) {
    return logits.masked_fill(outside, -std::numeric_limits<float>::infinity()).argmax(1);
  };
  const auto percent = [](const at::Tensor& hits) { return 100.0 * hits.to(at::kDouble).mean().item<double>(); };
  const nlohmann::json class_il_agreement =
      task_id_input ? nlohmann::json() : nlohmann::json(percent(a.argmax(1) == b.argmax(1)));
  const nlohmann::json class_il_accuracy = task_id_input ? nlohmann::json()
                                                         : nlohmann::json{{"fp32", percent(a.argmax(1) == set.labels)},
                                                                          {"int8", percent(b.argmax(1) == set.labels)}};
  const auto finite = at::isfinite(a);
  const auto difference = (a - b).masked_fill(finite.logical_not(), 0).abs();
  return {{"images", set.images.size(0)},
          {"top1_agreement_percent", {{"class_il", class_il_agreement}, {"task_il", percent(within(a) == within(b))}}},
          {"accuracy_percent",
           {{"class_il", class_il_accuracy},
            {"task_il", {{"fp32", percent(within(a) == set.labels)}, {"int8", percent(within(b) == set.labels)}}}}},
          {"max_abs_logit_difference", difference.max().item<double>()},
          {"mean_abs_logit_difference", (difference.sum() / finite.sum()).item<double>()},
          {"max_abs_logit_fp32", a.masked_fill(finite.logical_not(), 0).abs().max().item<double>()}};
}

// The trace written as ONNX (one file per task for a multi-head model), each
// run by OpenCV's DNN module on the check set against the trace; export.json's
// entries in `entries`, the files' bytes in `files`.
void export_onnx_files(torch::jit::Module& traced, const CheckSet& set, const TaskData& data, int64_t num_classes,
                       bool multi_head, int64_t opset, std::vector<std::pair<std::string, std::string>>& files,
                       nlohmann::json& entries) {
  const InputShape shape = data.input_shape();
  const int64_t heads = multi_head ? data.num_tasks() : 1;
  for (int64_t task = 0; task < heads; ++task) {
    const std::string file = multi_head ? "model_task" + std::to_string(task) + ".onnx" : "model.onnx";
    const OnnxModel onnx = export_onnx(traced, {shape.channels, shape.height, shape.width}, num_classes, git_commit(),
                                       opset, multi_head ? task : -1);
    OnnxRuntime runtime(onnx.bytes, file);
    double worst = 0, largest = 0;
    torch::NoGradGuard no_grad;
    for (int64_t start = 0; start < set.images.size(0); start += 64) {
      const int64_t n = std::min<int64_t>(64, set.images.size(0) - start);
      const auto x = set.images.narrow(0, start, n);
      const auto reference = multi_head ? run_traced(traced, x, at::full({n}, task, at::kLong)) : run_traced(traced, x);
      const auto logits = runtime.logits(x);
      const auto finite = at::isfinite(reference);
      check<Error>(logits.sizes() == reference.sizes() && at::isfinite(logits).equal(finite),
                   "export --onnx: " + file + " run by OpenCV gives logits of another shape, or infinite elsewhere");
      worst = std::max(worst, (logits - reference).masked_fill(finite.logical_not(), 0).abs().max().item<double>());
      largest = std::max(largest, reference.masked_fill(finite.logical_not(), 0).abs().max().item<double>());
    }
    const double scale = std::max(1.0, largest);
    if (worst > kOnnxTolerance * scale)
      throw Error("export --onnx: " + file + " run by OpenCV differs from the trace by " + std::to_string(worst) +
                  " (more than " + std::to_string(kOnnxTolerance) + " x max(1, largest |logit| " +
                  std::to_string(scale) + ")); nothing was written");
    nlohmann::json entry = {
        {"file", file},
        {"format", "onnx"},
        {"precision", "float32"},
        {"opset", onnx.opset},
        {"bytes", onnx.bytes.size()},
        {"nodes", onnx.nodes},
        {"op_types", onnx.op_types},
        {"inputs", {"images"}},
        {"output", multi_head ? "logits [N, num_classes] of task " + std::to_string(task) +
                                    "'s head; classes outside that task are -inf"
                              : "logits [N, num_classes]"},
        {"validated", "ONNX's checker and strict shape inference (libonnx " + onnx_library_version() + ")"},
        {"check",
         {{"runtime", OnnxRuntime::name()},
          {"images", set.images.size(0)},
          {"max_abs_logit_difference", worst},
          {"max_abs_logit", scale},
          {"tolerance", "1e-4 x max(1, max_abs_logit)"}}}};
    if (multi_head) entry["task"] = task;
    files.emplace_back(file, onnx.bytes);
    entries.push_back(entry);
  }
}

std::string default_engine() {
  const auto engines = int8_engines();
  if (engines.empty()) throw ConfigError("--int8: this LibTorch has no quantized engine (onednn or qnnpack)");
  return engines.front();
}

// The model's parameters and buffers as a torch.save'd state_dict; the CIFAR
// ResNets under torchvision's names (their layers are torchvision's, but for the
// 3x3 stem without max-pool), MobileNetV2's reference variant under
// torchvision's MobileNetV2 names (its blocks are torchvision's; the strides
// and ReLU differ, which no tensor shows), the others under ours.
nlohmann::json state_dict_export(torch::nn::Module& model, const std::string& backbone, std::string& bytes) {
  static const std::set<std::string> resnets = {"resnet18", "resnet34", "resnet50", "reduced_resnet18"};
  TensorNames names = TensorNames::kSscl;
  if (resnets.count(backbone) > 0) names = TensorNames::kTorchvisionResNet;
  if (backbone == "mobilenet_v2" && has_torchvision_mobilenet_v2_layout(model))
    names = TensorNames::kTorchvisionMobileNetV2;
  const auto tensors = named_tensors(model, names);
  bytes = state_dict_bytes(tensors);
  const char* names_text = names == TensorNames::kTorchvisionResNet
                               ? "torchvision's ResNet (conv1 3x3 stride 1, no max-pool)"
                           : names == TensorNames::kTorchvisionMobileNetV2
                               ? "torchvision's MobileNetV2 (CIFAR strides: stem and second stage at stride 1; ReLU)"
                               : "sscl's";
  return {{"file", "state_dict.pt"},
          {"format", "state_dict"},
          {"precision", "float32"},
          {"bytes", bytes.size()},
          {"tensors", tensors.size()},
          {"names", names_text},
          {"note", "BatchNorm not folded: the weights as trained; torch.load and load_state_dict read it"}};
}

}  // namespace

nlohmann::json export_run(const ExportOptions& options) {
  const fs::path config_file = options.run_dir / "config.toml", weights_file = options.run_dir / "model.pt";
  if (!fs::is_directory(options.run_dir)) throw IoError(options.run_dir.string() + ": no such run directory");
  if (!fs::exists(config_file)) throw IoError(config_file.string() + ": no such file (not a run directory of sscl)");
  if (!fs::exists(weights_file))
    throw IoError(weights_file.string() +
                  ": no such file (the run has not finished, or ran with train.save_model = false)");
  check<ConfigError>(options.check_images > 0, "export: the number of check images must be positive");
  check<ConfigError>(!options.int8 || options.calib_images > 0, "--calib-images must be positive");
  const std::string engine = !options.int8 ? "" : options.engine.empty() ? default_engine() : options.engine;
  if (options.int8) use_quantized_engine(engine);     // refuses an engine this LibTorch lacks, before any work
  if (options.onnx) check_onnx_opset(options.opset);  // before any work

  const auto rebuilt = rebuild_run(config_file, options.run_dir.filename().string());
  const Config& config = rebuilt->config;
  const std::string& run_name = rebuilt->name;
  const auto& run = rebuilt->run;
  const std::string label = run->method_label;
  if (!run->method->traits().single_network)
    throw ConfigError(config_file.string() + ": method.name = \"" + run->method->name() +
                      "\": its prediction needs networks that model.pt does not hold (PNN's columns); its export "
                      "is not supported yet");
  try {
    torch::load(run->model, weights_file.string());
  } catch (const c10::Error& e) {
    throw IoError(weights_file.string() + ": not a model.pt of this run's model (" + e.what_without_backtrace() + ")");
  }
  run->model->to(at::kCPU);
  // Before tracing, of the weights as trained (BatchNorm not folded).
  const std::string backbone = config.get<std::string>("model.backbone");
  std::string state_dict;
  nlohmann::json state_dict_entry;
  if (options.state_dict) state_dict_entry = state_dict_export(*run->model, backbone, state_dict);

  const TaskData& data = *run->data;
  std::vector<std::vector<int64_t>> task_classes;
  for (int t = 0; t < data.num_tasks(); ++t) task_classes.push_back(data.classes(t));
  const bool multi_head = run->model->multi_head();
  TracedModel traced =
      trace_classifier(run->model, data.input_shape(), multi_head ? task_classes : decltype(task_classes){});

  // The check: the run's own test images, each with its task id.
  const CheckSet set = check_set(data, options.check_images);
  auto task_classes_mask = at::zeros({data.num_tasks(), run->model->num_classes()}, at::kBool);
  for (int t = 0; t < data.num_tasks(); ++t)
    for (int64_t c : task_classes[t]) task_classes_mask[t][c] = true;
  const at::Tensor task_mask = multi_head ? task_classes_mask : at::Tensor();
  const int64_t single = std::min<int64_t>(16, set.images.size(0));
  const CheckSet first{set.images.narrow(0, 0, single), set.task_ids.narrow(0, 0, single),
                       set.labels.narrow(0, 0, single)};
  const TraceCheck at_batch_1 = trace_difference(traced.module, run->model, first, task_mask, 1);
  const TraceCheck at_batch_64 = trace_difference(traced.module, run->model, set, task_mask, 64);
  const double worst = std::max(at_batch_1.max_abs_difference, at_batch_64.max_abs_difference);
  const double scale = std::max({1.0, at_batch_1.max_abs_logit, at_batch_64.max_abs_logit});
  if (worst > kTraceTolerance * scale)
    throw Error("export: the traced model's logits differ from the eager model's by " + std::to_string(worst) +
                " (more than " + std::to_string(kTraceTolerance) + " x max(1, largest |logit| " +
                std::to_string(scale) + ")); nothing was written");

  std::ostringstream bytes;
  traced.module.save(bytes);
  const std::string model_bytes = bytes.str();

  std::string int8_bytes;
  nlohmann::json int8_entry;
  if (options.int8) {
    const CheckSet calibration = calibration_set(data, options.calib_images);
    QuantizedModel q =
        quantize_int8(traced.module, calibration.images, multi_head ? calibration.task_ids : at::Tensor(), engine);
    std::ostringstream out;
    q.module.save(out);
    int8_bytes = out.str();
    int8_entry = {
        {"file", "model_int8.pt"},
        {"format", "torchscript"},
        {"precision", "int8"},
        {"bytes", int8_bytes.size()},
        {"bytes_to_fp32", static_cast<double>(int8_bytes.size()) / static_cast<double>(model_bytes.size())},
        {"engine", engine},
        {"method",
         "post-training static quantization (LibTorch graph mode: observers, calibration, "
         "quantize/dequantize, finalize)"},
        {"weights", q.weight_qscheme + " qint8, min/max"},
        {"activations", q.activation_qscheme + " quint8 0.." + std::to_string(q.activation_quant_max) + ", min/max"},
        {"calibration_images", calibration.images.size(0)},
        {"calibration",
         "the run's training images (labeled and unlabeled, evenly spaced per task), "
         "unaugmented, normalised as in training"},
        {"quantized_layers", q.quantized_layers},
        {"float_layers", q.float_layers},
        {"quantized_batch_norms", q.quantized_batch_norms},
        {"float_batch_norms", q.float_batch_norms},
        {"check", compare_int8(traced.module, q.module, set, task_classes_mask, multi_head)}};
    if (q.quantized_batch_norms > 0)
      int8_entry["note"] =
          "BatchNorms that follow no convolution (pre-activation) cannot fold; they run as "
          "quantized batch norm";
  }

  std::vector<std::pair<std::string, std::string>> onnx_files;
  nlohmann::json onnx_entries = nlohmann::json::array();
  if (options.onnx)
    export_onnx_files(traced.module, set, data, run->model->num_classes(), multi_head, options.opset, onnx_files,
                      onnx_entries);

  nlohmann::json info;
  info["sscl_version"] = sscl_version();
  info["sscl_commit"] = git_commit();
  info["name"] = run_name;
  info["run_dir"] = fs::absolute(options.run_dir).lexically_normal().string();
  info["method"] = label;
  info["backbone"] = backbone;
  const InputShape shape = data.input_shape();
  info["input"] = {{"shape", {shape.channels, shape.height, shape.width}},
                   {"dtype", "float32"},
                   {"layout", "NCHW"},
                   {"normalisation", "(pixel - mean) / std per channel, pixels on the 0..255 scale"}};
  if (const auto* split = dynamic_cast<const SplitSemiTasks*>(&data)) {
    info["input"]["mean"] = split->options().mean;
    info["input"]["std"] = split->options().std;
    info["class_names"] = split->data().class_names;
  }
  info["num_classes"] = run->model->num_classes();
  info["tasks"] = task_classes;
  info["multi_head"] = multi_head;
  info["scenario"] = to_string(run->scenario);  // what the run was trained and evaluated for
  const std::string note = prediction_note(label);
  if (!note.empty()) info["prediction_note"] = note;
  info["files"] = nlohmann::json::array();
  info["files"].push_back({{"file", "model_fp32.pt"},
                           {"format", "torchscript"},
                           {"precision", "float32"},
                           {"bytes", model_bytes.size()},
                           {"inputs", multi_head ? nlohmann::json{"images", "task_ids"} : nlohmann::json{"images"}},
                           {"output", multi_head ? "logits [N, num_classes]; classes outside the row's task are -inf"
                                                 : "logits [N, num_classes]"},
                           {"batch_norms_folded", traced.folded_batch_norms},
                           {"batch_norms_kept", traced.unfolded_batch_norms},
                           {"check",
                            {{"images", set.images.size(0)},
                             {"max_abs_logit_difference_batch_1", at_batch_1.max_abs_difference},
                             {"max_abs_logit_difference_batch_64", at_batch_64.max_abs_difference},
                             {"max_abs_logit", scale},
                             {"max_relative_difference", worst / scale},
                             {"tolerance", "1e-5 x max(1, max_abs_logit)"}}}});
  if (options.int8) {
    int8_entry["inputs"] = info["files"][0]["inputs"];
    int8_entry["output"] = info["files"][0]["output"];
    info["files"].push_back(int8_entry);
  }
  for (const auto& entry : onnx_entries) info["files"].push_back(entry);
  if (options.state_dict) info["files"].push_back(state_dict_entry);

  fs::create_directories(options.out_dir);
  write_file_atomic(options.out_dir / "model_fp32.pt", model_bytes);
  if (options.int8) write_file_atomic(options.out_dir / "model_int8.pt", int8_bytes);
  for (const auto& [file, bytes] : onnx_files) write_file_atomic(options.out_dir / file, bytes);
  if (options.state_dict) write_file_atomic(options.out_dir / "state_dict.pt", state_dict);
  write_file_atomic(options.out_dir / "export.json", info.dump(2) + "\n");
  return info;
}

}  // namespace sscl
