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
    if (model.entry.contains("task"))
      throw IoError(model.file.string() +
                    ": the ONNX file of one task of a multi-head model; tools/infer runs the "
                    "whole model from model_fp32.pt");
    std::ifstream file(model.file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    model.onnx = std::make_shared<OnnxRuntime>(bytes, model.file.string());
    model.bytes = static_cast<int64_t>(bytes.size());
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
  return model;
}

at::Tensor predict_logits(ExportedModel& model, const at::Tensor& images, const at::Tensor& task_ids) {
  if (model.onnx) return model.onnx->logits(images);
  return model.task_id_input ? run_traced(model.module, images, task_ids) : run_traced(model.module, images);
}

std::string runtime_name(const ExportedModel& model) {
  if (model.onnx) return OnnxRuntime::name() + " (its CPU backend)";
  if (model.entry.contains("engine"))
    return "LibTorch TorchScript interpreter, CPU, quantized engine " + model.entry["engine"].get<std::string>();
  return "LibTorch TorchScript interpreter, CPU";
}

}  // namespace sscl
