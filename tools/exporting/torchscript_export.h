// TorchScript export of a trained Classifier: the C++ modules traced in eval
// mode into a torch::jit::Module that torch::jit::load and Python's
// torch.jit.load read, frozen (weights become constants) and with every
// BatchNorm that follows a convolution or a linear layer folded into it.
//
// The C++ module tree is mirrored as jit modules holding the very same tensors,
// so the tracer records the weights as attributes of `self` (as Python's
// torch.jit.trace does) rather than as anonymous constants; freezing then
// inlines them and lets the folding passes see constant weights.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <vector>

#include "core/nn/backbone.h"
#include "core/nn/classifier.h"

namespace sscl {

struct TracedModel {
  torch::jit::Module module;
  int64_t folded_batch_norms = 0;    // folded into a conv or linear layer
  int64_t unfolded_batch_norms = 0;  // left as aten::batch_norm (e.g. pre-activation BN)
  bool task_id_input = false;        // forward(images, task_ids)
};

// Single head: forward(images [N, C, H, W]) -> logits [N, num_classes].
// `task_classes` non-empty (multi-head models): forward(images, task_ids [N]
// int64) -> logits [N, num_classes] of each row's task head, every other class
// -inf. `model` is put in eval mode and left there. Traced at batch
// `example_batch`; the graph takes any batch size.
TracedModel trace_classifier(Classifier& model, const InputShape& shape,
                             const std::vector<std::vector<int64_t>>& task_classes = {}, int64_t example_batch = 2);

// Runs a traced model: images (and task ids when it has that input) -> logits.
at::Tensor run_traced(torch::jit::Module& module, const at::Tensor& images, const at::Tensor& task_ids = {});

}  // namespace sscl
