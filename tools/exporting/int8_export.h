// int8 export: post-training static quantization of a traced model through
// LibTorch's graph-mode passes (observers, calibration on the run's training
// images, quantize/dequantize, finalize), as Python's torch.ao.quantization
// quantize_jit does.
//
// The input is the frozen fp32 export (tools/exporting/torchscript_export.h),
// BatchNorm already folded into the layers. Its weights are constants there, so
// they are first made attributes of a fresh module again, and fully connected
// layers (traced as addmm / matmul of W^T) are written as aten::linear, the
// form the quantization patterns match.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <string>
#include <vector>

namespace sscl {

// The quantized engines of this LibTorch that int8 export supports ("onednn"
// for x86, "qnnpack" for ARM), in that order.
std::vector<std::string> int8_engines();

// Makes `engine` the one quantized kernels run on (before a quantized model is
// built or loaded: packed weights are engine-specific). ConfigError naming
// `--engine` when this LibTorch lacks it.
void use_quantized_engine(const std::string& engine);

struct QuantizedModel {
  torch::jit::Module module;
  std::string engine;
  std::string weight_qscheme;          // per_channel_symmetric (onednn) or per_tensor_symmetric (qnnpack)
  std::string activation_qscheme;      // per_tensor_affine, quint8 0..activation_quant_max
  int64_t activation_quant_max = 255;  // 127 on onednn (see int8_export.cpp)
  int64_t quantized_layers = 0;        // convolutions and linear layers running in int8
  int64_t float_layers = 0;            // those left in float32
  int64_t quantized_batch_norms = 0;   // BatchNorms that could not fold (WRN's pre-activation), run in int8
  int64_t float_batch_norms = 0;       // those left in float32
};

// `calibration`: images (normalised as in training) run through the observed
// model to set the activation ranges; `calibration_task_ids` for a model that
// takes task ids. ConfigError naming `--engine` for an engine not in
// int8_engines().
QuantizedModel quantize_int8(const torch::jit::Module& frozen_fp32, const at::Tensor& calibration,
                             const at::Tensor& calibration_task_ids, const std::string& engine,
                             int64_t calibration_batch = 32);

}  // namespace sscl
