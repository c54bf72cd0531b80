// A model written by tools/export, loaded for inference: the TorchScript file
// and the export.json beside it (classes, tasks, input shape, which inputs).
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sscl {

struct ExportedModel {
  std::filesystem::path file;
  nlohmann::json info;   // export.json
  nlohmann::json entry;  // export.json's "files" entry of `file`
  torch::jit::Module module;
  int64_t bytes = 0;
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
at::Tensor predict_logits(ExportedModel& model, const at::Tensor& images, const at::Tensor& task_ids);

}  // namespace sscl
