#include "tools/inference/exported_model.h"

#include <ATen/ATen.h>
#include <torch/csrc/jit/serialization/import.h>

#include <fstream>

#include "core/error.h"
#include "tools/exporting/int8_export.h"
#include "tools/exporting/torchscript_export.h"
#include "tools/inference/onnx_runtime.h"

namespace sscl {
namespace fs = std::filesystem;

namespace {

std::shared_ptr<OnnxRuntime> read_onnx(const fs::path& file, int64_t& bytes) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError(file.string() + ": no such model file (export.json lists it)");
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes += static_cast<int64_t>(data.size());
  return std::make_shared<OnnxRuntime>(data, file.string());
}

// model.onnx, or every model_task<t>.onnx export.json lists when `model.file` is one of them.
void load_onnx(ExportedModel& model) {
  if (!model.entry.contains("task")) {
    model.onnx.push_back(read_onnx(model.file, model.bytes));
    model.files = {model.file};
    return;
  }
  const auto num_tasks = static_cast<int64_t>(model.tasks.size());
  model.onnx.resize(model.tasks.size());
  model.onnx_per_task = true;
  for (const auto& entry : model.info.at("files")) {
    if (entry.value("format", "") != "onnx" || !entry.contains("task")) continue;
    const auto task = entry.at("task").get<int64_t>();
    const fs::path file = model.file.parent_path() / entry.at("file").get<std::string>();
    if (task < 0 || task >= num_tasks || model.onnx[task])
      throw IoError((model.file.parent_path() / "export.json").string() + ": " + file.filename().string() +
                    " is for task " + std::to_string(task) + ", not one of " + std::to_string(num_tasks) +
                    " tasks or a second file for it");
    model.onnx[task] = read_onnx(file, model.bytes);
    model.files.push_back(file);
  }
  for (int64_t t = 0; t < num_tasks; ++t)
    if (!model.onnx[t])
      throw IoError((model.file.parent_path() / "export.json").string() + ": lists no ONNX file of task " +
                    std::to_string(t) + " (the model has " + std::to_string(num_tasks) + ")");
}

// Each row through the file of its task.
at::Tensor per_task_logits(ExportedModel& model, const at::Tensor& images, const at::Tensor& task_ids) {
  auto logits = at::empty({images.size(0), model.num_classes}, images.options());
  const auto tasks = std::get<0>(at::_unique(task_ids));
  for (int64_t i = 0; i < tasks.size(0); ++i) {
    const int64_t t = tasks[i].item<int64_t>();
    check<Error>(t >= 0 && t < static_cast<int64_t>(model.onnx.size()),
                 model.file.string() + ": task id " + std::to_string(t) + " has no ONNX file");
    const auto rows = task_ids.eq(t).nonzero().squeeze(1);
    logits.index_copy_(0, rows, model.onnx[t]->logits(images.index_select(0, rows).contiguous()));
  }
  return logits;
}

}  // namespace

ExportedModel load_exported_model(const fs::path& path) {
  std::error_code ec;
  ExportedModel model;
  model.file = fs::is_directory(path, ec) ? path / "model_fp32.pt" : path;
  if (!fs::is_regular_file(model.file, ec)) throw IoError(model.file.string() + ": no such model file");
  const fs::path json_file = model.file.parent_path() / "export.json";
  std::ifstream in(json_file);
  if (!in) throw IoError(json_file.string() + ": no such file (a model written by tools/export has one beside it)");
  try {
    model.info = nlohmann::json::parse(in);
    const std::string name = model.file.filename().string();
    for (const auto& entry : model.info.at("files"))
      if (entry.at("file").get<std::string>() == name) model.entry = entry;
    if (model.entry.is_null()) throw IoError(json_file.string() + ": lists no file '" + name + "'");
    model.num_classes = model.info.at("num_classes").get<int64_t>();
    model.tasks = model.info.at("tasks").get<std::vector<std::vector<int64_t>>>();
    model.task_id_input = model.info.at("multi_head").get<bool>();
    model.task_il = model.task_id_input || model.info.value("scenario", "") == "task-il";
    model.input_shape = model.info.at("input").at("shape").get<std::vector<int64_t>>();
  } catch (const nlohmann::json::exception& e) {
    throw IoError(json_file.string() + ": not an export.json of sscl (" + e.what() + ")");
  }
  const std::string format = model.entry.value("format", "");
  if (format == "onnx") {
    load_onnx(model);
    return model;
  }
  if (format != "torchscript")
    throw IoError(model.file.string() + ": format '" + format + "' is not one tools/infer runs (torchscript, onnx)");
  if (model.entry.contains("engine")) {  // int8: its packed weights are built for the engine it was quantized for
    try {
      use_quantized_engine(model.entry.at("engine").get<std::string>());
    } catch (const ConfigError& e) {
      throw IoError(model.file.string() + ": quantized for an engine this LibTorch lacks (" + e.what() + ")");
    }
  }
  try {
    model.module = torch::jit::load(model.file.string(), at::kCPU);
  } catch (const c10::Error& e) {
    throw IoError(model.file.string() + ": not a TorchScript model, or truncated (" + e.what_without_backtrace() + ")");
  }
  model.module.eval();
  model.bytes = static_cast<int64_t>(fs::file_size(model.file));
  model.files = {model.file};
  return model;
}

at::Tensor predict_logits(ExportedModel& model, const at::Tensor& images, const at::Tensor& task_ids) {
  if (model.onnx_per_task) return per_task_logits(model, images, task_ids);
  if (!model.onnx.empty()) return model.onnx.front()->logits(images);
  return model.task_id_input ? run_traced(model.module, images, task_ids) : run_traced(model.module, images);
}

std::string runtime_name(const ExportedModel& model) {
  if (model.onnx_per_task)
    return OnnxRuntime::name() + " (its CPU backend), one file per task (" + std::to_string(model.onnx.size()) +
           "), each image through its task's";
  if (!model.onnx.empty()) return OnnxRuntime::name() + " (its CPU backend)";
  if (model.entry.contains("engine"))
    return "LibTorch TorchScript interpreter, CPU, quantized engine " + model.entry["engine"].get<std::string>();
  return "LibTorch TorchScript interpreter, CPU";
}

}  // namespace sscl
