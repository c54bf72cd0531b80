#include "tools/exporting/torchscript_export.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/api/include/torch/nn/module.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_pooling.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/frozen_conv_folding.h>

#include <limits>
#include <string>

#include "core/error.h"

namespace sscl {
namespace {

namespace jit = torch::jit;

// A jit module holding `module`'s own parameters and buffers (the same
// tensors) and a mirror of each child, under one compilation unit.
jit::Module mirror(const torch::nn::Module& module, const std::string& type_name,
                   const std::shared_ptr<jit::CompilationUnit>& unit) {
  jit::Module out(c10::QualifiedName("__torch__.sscl." + type_name), unit, /*shouldMangle=*/true);
  out.register_attribute("training", c10::BoolType::get(), false);
  for (const auto& p : module.named_parameters(/*recurse=*/false))
    out.register_parameter(p.key(), p.value(), /*is_buffer=*/false);
  for (const auto& b : module.named_buffers(/*recurse=*/false)) out.register_buffer(b.key(), b.value());
  for (const auto& c : module.named_children()) out.register_module(c.key(), mirror(*c.value(), "Module", unit));
  return out;
}

c10::optional<at::Tensor> constant_tensor(jit::Value* v) {
  const auto value = jit::toIValue(v);
  if (!value || !value->isTensor()) return c10::nullopt;
  return value->toTensor();
}

bool constant_false(jit::Value* v) {
  const auto value = jit::toIValue(v);
  return value && value->isBool() && !value->toBool();
}

bool constant_one(jit::Value* v) {
  const auto value = jit::toIValue(v);
  return value && ((value->isInt() && value->toInt() == 1) || (value->isDouble() && value->toDouble() == 1.0));
}

// A fully connected layer followed by an eval-mode BatchNorm over its outputs
// becomes one layer: W' = W * s, b' = (b - mean) * s + beta, s = gamma /
// sqrt(var + eps). Torch's frozen folding passes cover convolutions only, and
// torch::nn::Linear records as addmm(b, x, W^T) or, without a bias,
// matmul(x, W^T) (aten::linear too, for layers that call it). Returns how many
// it folded.
int64_t fold_frozen_linear_batch_norm(jit::Graph& graph) {
  int64_t folded = 0;
  for (auto it = graph.nodes().begin(); it != graph.nodes().end();) {
    jit::Node* bn = *it++;
    if (bn->kind() != c10::aten::batch_norm || bn->input(0)->uses().size() != 1) continue;
    jit::Node* layer = bn->input(0)->node();
    // BN's channels are the layer's outputs only for 2-D outputs. A frozen
    // graph has lost its shapes: where the rank is unknown, BN's size must
    // equal the layer's outputs, and the export compares the folded model's
    // logits with the eager model's on real images anyway.
    const auto type = layer->output()->type()->cast<c10::TensorType>();
    if (type && type->dim() && *type->dim() != 2) continue;
    const auto gamma = constant_tensor(bn->input(1)), beta = constant_tensor(bn->input(2));
    const auto mean = constant_tensor(bn->input(3)), var = constant_tensor(bn->input(4));
    const auto eps = jit::toIValue(bn->input(7));
    if (!gamma || !beta || !mean || !var || !eps || !constant_false(bn->input(5))) continue;
    const at::Tensor scale = *gamma / at::sqrt(*var + eps->toDouble());
    const auto shift = [&](const at::Tensor& bias) { return (bias - *mean) * scale + *beta; };
    jit::WithInsertPoint guard(layer);
    if (layer->kind() == c10::aten::linear) {  // linear(x, W [out, in], b?)
      const auto weight = constant_tensor(layer->input(1));
      const auto bias = jit::toIValue(layer->input(2));
      if (!weight || !bias || weight->size(0) != scale.size(0)) continue;
      layer->replaceInput(1, graph.insertConstant(*weight * scale.unsqueeze(1)));
      layer->replaceInput(2, graph.insertConstant(shift(bias->isTensor() ? bias->toTensor() : at::zeros_like(*mean))));
    } else if (layer->kind() == c10::aten::addmm) {  // addmm(b, x, W^T [in, out], beta, alpha)
      const auto bias = constant_tensor(layer->input(0)), weight_t = constant_tensor(layer->input(2));
      if (!bias || !weight_t || weight_t->size(1) != scale.size(0) || !constant_one(layer->input(3)) ||
          !constant_one(layer->input(4)))
        continue;
      layer->replaceInput(0, graph.insertConstant(shift(*bias)));
      layer->replaceInput(2, graph.insertConstant(*weight_t * scale.unsqueeze(0)));
    } else if (layer->kind() == c10::aten::matmul) {  // matmul(x, W^T [in, out]), then + b'
      const auto weight_t = constant_tensor(layer->input(1));
      if (!weight_t || weight_t->dim() != 2 || weight_t->size(1) != scale.size(0)) continue;
      layer->replaceInput(1, graph.insertConstant(*weight_t * scale.unsqueeze(0)));
      jit::WithInsertPoint after(bn);
      jit::Value* shifted =
          graph.insert(c10::aten::add, {layer->output(), graph.insertConstant(shift(at::zeros_like(*mean)))});
      bn->output()->replaceAllUsesWith(shifted);
    } else {
      continue;
    }
    if (bn->output()->hasUses()) bn->output()->replaceAllUsesWith(layer->output());
    bn->destroy();
    ++folded;
  }
  return folded;
}

int64_t count_batch_norms(const jit::Graph& graph) {
  int64_t n = 0;
  for (const jit::Node* node : graph.nodes()) n += node->kind() == c10::aten::batch_norm;
  return n;
}

}  // namespace

TracedModel trace_classifier(Classifier& model, const InputShape& shape,
                             const std::vector<std::vector<int64_t>>& task_classes, int64_t example_batch) {
  check<Error>(example_batch > 0, "trace_classifier: example_batch must be positive");
  model->eval();
  torch::NoGradGuard no_grad;
  const auto options = at::TensorOptions().device(model->parameters().front().device());
  auto unit = std::make_shared<jit::CompilationUnit>();
  jit::Module self = mirror(*model, "Classifier", unit);

  TracedModel traced;
  traced.task_id_input = !task_classes.empty();
  at::Tensor task_mask;  // [tasks, classes]: class c belongs to task t
  if (traced.task_id_input) {
    task_mask = at::zeros({static_cast<int64_t>(task_classes.size()), model->num_classes()}, options.dtype(at::kBool));
    for (size_t t = 0; t < task_classes.size(); ++t)
      for (int64_t c : task_classes[t]) task_mask[static_cast<int64_t>(t)][c] = true;
    self.register_buffer("task_mask", task_mask);
  }

  const auto example_images = at::zeros({example_batch, shape.channels, shape.height, shape.width}, options);
  const auto example_task_ids = at::zeros({example_batch}, options.dtype(at::kLong));
  jit::Stack inputs{example_images};
  if (traced.task_id_input) inputs.emplace_back(example_task_ids);
  const auto forward = [&](jit::Stack in) -> jit::Stack {
    at::Tensor logits = model->forward(in.at(0).toTensor());
    if (traced.task_id_input) {
      const auto allowed = task_mask.index_select(0, in.at(1).toTensor());
      logits = logits.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
    }
    return {logits};
  };
  const auto no_names = [](const torch::autograd::Variable&) { return std::string(); };
  auto trace = jit::tracer::trace(
      std::move(inputs), forward, no_names, /*strict=*/true, /*force_outplace=*/false, &self,
      traced.task_id_input ? std::vector<std::string>{"images", "task_ids"} : std::vector<std::string>{"images"});
  auto fn = unit->create_function(c10::QualifiedName(*self.type()->name(), "forward"), trace.first->graph);
  self.type()->addMethod(fn);

  traced.module = jit::freeze_module(self);
  auto graph = traced.module.get_method("forward").graph();
  const int64_t before = count_batch_norms(*graph);
  jit::FoldFrozenConvBatchnorm(graph);
  fold_frozen_linear_batch_norm(*graph);
  jit::EliminateDeadCode(graph);
  jit::ConstantPooling(graph);
  traced.unfolded_batch_norms = count_batch_norms(*graph);
  traced.folded_batch_norms = before - traced.unfolded_batch_norms;
  return traced;
}

at::Tensor run_traced(torch::jit::Module& module, const at::Tensor& images, const at::Tensor& task_ids) {
  torch::NoGradGuard no_grad;
  std::vector<c10::IValue> inputs{images};
  if (task_ids.defined()) inputs.emplace_back(task_ids);
  return module.forward(inputs).toTensor();
}

}  // namespace sscl
