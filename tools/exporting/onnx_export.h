// ONNX export: the frozen TorchScript export (tools/exporting/torchscript_export.h,
// BatchNorm already folded) translated node by node into an ONNX graph written
// with libonnx's protocol buffers, then checked by ONNX's checker and its
// shape inference. LibTorch's own ONNX exporter needs Python's symbolic
// functions, so the translation is ours: one ONNX node (or a few) per aten op,
// the frozen weights as initializers. An op without a translation is refused
// by name.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sscl {

// The opsets the translation writes (ONNX's default domain): the ops it uses
// mean the same from 13 (Clip's bounds as inputs) up to 17, the newest that
// Debian's libonnx 1.12 knows (18 moves ReduceMean's axes to an input).
constexpr int64_t kOnnxMinOpset = 13;
constexpr int64_t kOnnxMaxOpset = 17;

// ConfigError naming `--opset` when `opset` is outside kOnnxMinOpset..kOnnxMaxOpset.
void check_onnx_opset(int64_t opset);

struct OnnxModel {
  std::string bytes;  // a serialized onnx.ModelProto
  int64_t opset = kOnnxMinOpset;
  int64_t nodes = 0;
  int64_t initializers = 0;
  std::vector<std::string> op_types;  // distinct, sorted
};

// `traced`: a frozen module of trace_classifier; `chw` its input's channels,
// height and width. Input "images" float32 [batch, C, H, W], output "logits"
// float32 [batch, num_classes]; the batch is a symbolic dimension. A multi-head
// trace (forward(images, task_ids)) is written one file per task: `task` picks
// the head, whose classes keep their logits and every other class is -inf, as
// the trace gives for that task id. (One file with a task_ids input would need
// Gather on runtime indices, which OpenCV 4.6's DNN module, the runtime the
// export is checked on, does not run.)
// Error naming the aten op (and why) when a node has no translation; Error with
// ONNX's message when the checker or the shape inference refuses the result,
// or the inferred output is not [batch, num_classes]; ConfigError for an opset
// outside kOnnxMinOpset..kOnnxMaxOpset.
OnnxModel export_onnx(const torch::jit::Module& traced, const std::vector<int64_t>& chw, int64_t num_classes,
                      const std::string& producer_version, int64_t opset = kOnnxMinOpset, int64_t task = -1);

// The libonnx the checker and shape inference came from ("1.12.0").
std::string onnx_library_version();

}  // namespace sscl
