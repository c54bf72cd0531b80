// A model written by tools/export, loaded for inference: the TorchScript file
// (LibTorch) or the ONNX file (OpenCV's DNN module) and the export.json beside
// it (classes, tasks, input shape, which inputs). A multi-head model's ONNX
// export is one file per task (model_task<t>.onnx); naming any of them loads
// them all, and each image runs through the file of its task.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sscl {

class OnnxRuntime;

struct ExportedModel {
  std::filesystem::path file;
  nlohmann::json info;        // export.json
  nlohmann::json entry;       // export.json's "files" entry of `file`
  torch::jit::Module module;  // a TorchScript file
  // An ONNX file, or one per task (onnx[t] for task t) when onnx_per_task.
  std::vector<std::shared_ptr<OnnxRuntime>> onnx;
  bool onnx_per_task = false;
  std::vector<std::filesystem::path> files;  // every file it runs from
  int64_t bytes = 0;                         // of all of them
  int64_t num_classes = 0;
  std::vector<std::vector<int64_t>> tasks;  // classes of each task
  bool task_id_input = false;               // forward(images, task_ids): a multi-head model
  bool task_il = false;                     // trained for task-IL (the task id known at test time)
  std::vector<int64_t> input_shape;         // C, H, W
};

// `path`: a model file from tools/export, or its output directory (then
// model_fp32.pt in it). IoError naming the file when it or export.json beside it
// is missing, unreadable, truncated or of another format.
ExportedModel load_exported_model(const std::filesystem::path& path);

// Logits [N, num_classes] of `images`; `task_ids` (int64 [N]) are given to a
// model that takes them and ignored by one that does not.
// The runtime that runs it, for the report ("LibTorch TorchScript interpreter,
// CPU" and the like).
std::string runtime_name(const ExportedModel& model);
at::Tensor predict_logits(ExportedModel& model, const at::Tensor& images, const at::Tensor& task_ids);

}  // namespace sscl
