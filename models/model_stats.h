// Size and cost of a model for one input image: parameter counts, buffer bytes,
// multiply-accumulates (MACs) and the model's bytes in float32 and int8.
//
//   auto stats = model_stats(*classifier, {3, 32, 32});   // ResNet-18: 555,422,720 MACs
//
// MACs are counted generically, for any module (users add their own backbones):
// one forward pass of a [1, C, H, W] input is traced with the JIT tracer and the
// graph's nodes are summed, with the shapes the trace recorded:
//   - convolutions (aten::_convolution, aten::convolution, aten::conv1d/2d/3d):
//     output elements * in_channels/groups * kernel elements (transposed ones:
//     input elements * out_channels/groups * kernel elements);
//   - linear layers and matrix products (aten::linear, aten::addmm, aten::mm,
//     aten::matmul, aten::bmm): output elements * inner (in-features) dimension.
// Not counted, as in the MAC tables of papers: bias additions, batch norm,
// activations, pooling, residual additions, softmax, reshapes. So a MAC figure
// here is the same whether or not a conv has a bias or is followed by BN.
//
// The module is put in eval mode for the trace (BN uses its running statistics and
// they are not updated, dropout is off) and every module's own training flag is
// restored afterwards; the trace runs without gradients (parameters' requires_grad
// flags are cleared for its duration and restored, also on error). A forward pass
// that cannot run on the shape, or that cannot be traced, throws sscl::Error
// naming the shape and the cause.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <functional>

#include "core/nn/backbone.h"

namespace sscl {

struct ModelStats {
  int64_t parameters = 0;            // elements of all parameters (a shared one once)
  int64_t trainable_parameters = 0;  // those with requires_grad
  int64_t buffers_bytes = 0;         // buffers as stored (BN running stats float32, counters int64)
  int64_t macs = 0;                  // multiply-accumulates for one image, see above
  // 4 bytes per parameter + buffers_bytes: the weights as trained and saved.
  double float32_bytes = 0;
  // An idealised int8 model: 1 byte per parameter, every parameter quantised
  // (conv and linear weights, and also biases and BN scales/shifts), buffers kept
  // as they are (buffers_bytes). It leaves out quantisation scales and zero points
  // (a few bytes per tensor or channel), the int32 biases that int8 kernels use,
  // and the folding of BN into the convolutions that a deployment would do (which
  // removes BN's parameters and buffers); next to the weights these are small, a
  // few percent at most for the backbones here.
  double int8_bytes = 0;
};

// The model's forward on a [1, C, H, W] batch; for modules whose type
// model_stats(model, shape) does not know.
using ForwardFn = std::function<torch::Tensor(const torch::Tensor&)>;

// For one image of `shape`. `model` must be a Backbone, a Classifier
// (ClassifierImpl) or a torch::nn::Sequential; anything else throws sscl::Error
// (use the overload with a forward function).
ModelStats model_stats(torch::nn::Module& model, const InputShape& shape);

// `forward` runs `model` on its argument (e.g. a lambda calling model.forward).
ModelStats model_stats(torch::nn::Module& model, const InputShape& shape, const ForwardFn& forward);

}  // namespace sscl
