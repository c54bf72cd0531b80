// tools/export: a finished run directory (config.toml + model.pt) to files a
// deployment reads: TorchScript fp32 (model_fp32.pt, BatchNorm folded;
// tools/exporting/torchscript_export.h), with --int8 a statically quantized
// TorchScript model (model_int8.pt; tools/exporting/int8_export.h), with --onnx
// ONNX (tools/exporting/onnx_export.h), with --state-dict the weights as a
// PyTorch state_dict (state_dict.pt, torchvision's names for the CIFAR ResNets),
// and export.json beside them.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace sscl {

struct ExportOptions {
  std::filesystem::path run_dir;
  std::filesystem::path out_dir;
  int64_t check_images = 256;  // test images the traced and eager logits are compared on
  bool int8 = false;           // also model_int8.pt
  int64_t calib_images = 512;  // training images the int8 activation ranges are calibrated on
  std::string engine;          // quantized engine; empty: onednn where this LibTorch has it, else qnnpack
  bool onnx = false;           // also model.onnx (multi-head: model_task<t>.onnx per task)
  int64_t opset = 13;          // ONNX opset (kOnnxMinOpset..kOnnxMaxOpset)
  bool state_dict = false;     // also state_dict.pt: the weights for Python's load_state_dict
};

// Rebuilds the run's model from its config, loads model.pt, traces it, checks
// the traced logits against the eager model's on the run's test images (at
// batch 1 and at a batch of 64: refused above 1e-5 x max(1, largest
// |logit|)); with `int8` quantizes the trace, calibrated on the run's training
// images, and measures its agreement with fp32 on the same test images; with
// `onnx` writes the trace as ONNX and runs it with OpenCV's DNN module on the
// same test images (refused above 1e-4 x max(1, largest |logit|)). Then
// writes the files, each atomically, export.json last.
// Returns export.json's content. Throws IoError / ConfigError / Error naming
// the file or key; nothing is written to `out_dir` before every check passed.
nlohmann::json export_run(const ExportOptions& options);

}  // namespace sscl
