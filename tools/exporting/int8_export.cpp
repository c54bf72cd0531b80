#include "tools/exporting/int8_export.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/quantization/finalize.h>
#include <torch/csrc/jit/passes/quantization/insert_observers.h>
#include <torch/csrc/jit/passes/quantization/insert_quant_dequant.h>
#include <torch/utils.h>

#include <algorithm>

#include "core/error.h"

namespace sscl {
namespace {

namespace jit = torch::jit;
using c10::aten::_convolution;
using c10::aten::addmm;
using c10::aten::conv1d;
using c10::aten::conv2d;
using c10::aten::linear;
using c10::aten::matmul;

c10::optional<at::Tensor> tensor_constant(jit::Value* v) {
  if (v->node()->kind() != c10::prim::Constant) return c10::nullopt;
  const auto value = jit::toIValue(v);
  if (!value || !value->isTensor()) return c10::nullopt;
  return value->toTensor();
}

bool is_one(jit::Value* v) {
  const auto value = jit::toIValue(v);
  return value && ((value->isInt() && value->toInt() == 1) || (value->isDouble() && value->toDouble() == 1.0));
}

// Makes the weights and biases of the frozen graph's layers attributes of
// `module` (the graph's self) again, and rewrites fully connected layers as
// aten::linear(x, W, b): torch::nn::Linear traces as addmm(b, x, W^T) or
// matmul(x, W^T), which freezing turned into constants.
class Parameterizer {
 public:
  Parameterizer(jit::Module& module, jit::Graph& graph) : module_(module), graph_(graph) {}

  void run() {
    for (auto it = graph_.nodes().begin(); it != graph_.nodes().end();) {
      jit::Node* n = *it++;
      const auto kind = n->kind();
      if (kind == conv1d || kind == conv2d || kind == _convolution || kind == linear) {
        parameter_input(n, 1);
        parameter_input(n, 2);
      } else if (kind == addmm) {
        const auto bias = tensor_constant(n->input(0)), weight_t = tensor_constant(n->input(2));
        if (!bias || !weight_t || weight_t->dim() != 2 || !is_one(n->input(3)) || !is_one(n->input(4))) continue;
        replace_with_linear(n, n->input(1), *weight_t, *bias);
      } else if (kind == matmul) {
        const auto weight_t = tensor_constant(n->input(1));
        if (!weight_t || weight_t->dim() != 2 || tensor_constant(n->input(0))) continue;
        replace_with_linear(n, n->input(0), *weight_t, {});
      }
    }
    jit::EliminateDeadCode(graph_.block());
  }

 private:
  jit::Value* attribute(const at::Tensor& value, jit::Node* before) {
    const std::string name = "param_" + std::to_string(count_++);
    module_.register_parameter(name, value, /*is_buffer=*/false);
    jit::WithInsertPoint guard(before);
    return graph_.insertGetAttr(graph_.inputs()[0], name);
  }

  void parameter_input(jit::Node* n, size_t i) {
    if (const auto value = tensor_constant(n->input(i))) n->replaceInput(i, attribute(*value, n));
  }

  void replace_with_linear(jit::Node* n, jit::Value* x, const at::Tensor& weight_t, const at::Tensor& bias) {
    jit::Value* weight = attribute(weight_t.t().contiguous(), n);
    jit::Value* b = bias.defined() ? attribute(bias, n) : nullptr;
    jit::WithInsertPoint guard(n);
    if (!b) b = graph_.insertConstant(c10::IValue());
    jit::Value* out = graph_.insert(linear, {x, weight, b});
    n->output()->replaceAllUsesWith(out);
    n->destroy();
  }

  jit::Module& module_;
  jit::Graph& graph_;
  int64_t count_ = 0;
};

// A min/max observer as graph-mode quantization expects one: a module whose
// forward records the range of what passes through, and whose
// calculate_qparams gives (scale, zero_point) for its dtype and qscheme.
// ch_axis >= 0: one range per channel along that axis (weights).
jit::Module make_observer(const std::shared_ptr<jit::CompilationUnit>& unit, const std::string& name,
                          at::ScalarType dtype, at::QScheme qscheme, int64_t ch_axis, int64_t quant_min,
                          int64_t quant_max) {
  jit::Module observer(c10::QualifiedName("__torch__.sscl." + name), unit, /*shouldMangle=*/true);
  observer.register_attribute("training", c10::BoolType::get(), false);
  observer.register_attribute("dtype", c10::IntType::get(), static_cast<int64_t>(dtype));
  observer.register_attribute("qscheme", c10::IntType::get(), static_cast<int64_t>(qscheme));
  observer.register_attribute("ch_axis", c10::IntType::get(), ch_axis);
  observer.register_attribute("quant_min", c10::IntType::get(), quant_min);
  observer.register_attribute("quant_max", c10::IntType::get(), quant_max);
  const bool symmetric = qscheme == at::kPerTensorSymmetric || qscheme == at::kPerChannelSymmetric;
  observer.register_attribute("symmetric", c10::BoolType::get(), symmetric);
  observer.register_buffer("min_val", at::empty({0}));
  observer.register_buffer("max_val", at::empty({0}));
  // 4 is int64 (at::kLong): TorchScript source defined from C++ has no torch.int64.
  observer.define(R"JIT(
def forward(self, x):
    v = x.detach()
    if self.ch_axis >= 0:
        v = v.transpose(0, self.ch_axis).flatten(1)
        low = torch.amin(v, 1)
        high = torch.amax(v, 1)
    else:
        low = torch.min(v)
        high = torch.max(v)
    if self.min_val.numel() == 0:
        self.min_val = low
        self.max_val = high
    else:
        self.min_val = torch.min(self.min_val, low)
        self.max_val = torch.max(self.max_val, high)
    return x

def calculate_qparams(self):
    low = torch.clamp(self.min_val, max=0.0)
    high = torch.clamp(self.max_val, min=0.0)
    levels = float(self.quant_max - self.quant_min)
    if self.symmetric:
        scale = torch.clamp(torch.max(-low, high) / (levels / 2.0), min=1e-8)
        zero_point = torch.zeros_like(scale).to(4)
    else:
        scale = torch.clamp((high - low) / levels, min=1e-8)
        zero_point = torch.clamp(self.quant_min - torch.round(low / scale), self.quant_min, self.quant_max).to(4)
    return scale, zero_point
)JIT");
  return observer;
}

int64_t count_kinds(const jit::Graph& graph, const std::vector<std::string>& kinds) {
  int64_t n = 0;
  for (const jit::Node* node : graph.nodes())
    n += std::find(kinds.begin(), kinds.end(), node->kind().toQualString()) != kinds.end();
  return n;
}

c10::QEngine engine_of(const std::string& name) {
  if (name == "onednn") return c10::QEngine::ONEDNN;
  if (name == "qnnpack") return c10::QEngine::QNNPACK;
  return c10::QEngine::NoQEngine;
}

}  // namespace

std::vector<std::string> int8_engines() {
  std::vector<std::string> names;
  const auto& supported = at::globalContext().supportedQEngines();
  for (const std::string name : {"onednn", "qnnpack"})
    if (std::find(supported.begin(), supported.end(), engine_of(name)) != supported.end()) names.push_back(name);
  return names;
}

void use_quantized_engine(const std::string& engine) {
  const auto engines = int8_engines();
  if (std::find(engines.begin(), engines.end(), engine) == engines.end()) {
    std::string have;
    for (const auto& e : engines) have += (have.empty() ? "" : ", ") + e;
    throw ConfigError("--engine " + engine +
                      ": not a quantized engine of this LibTorch (it has: " + (have.empty() ? "none" : have) + ")");
  }
  at::globalContext().setQEngine(engine_of(engine));
}

QuantizedModel quantize_int8(const torch::jit::Module& frozen_fp32, const at::Tensor& calibration,
                             const at::Tensor& calibration_task_ids, const std::string& engine,
                             int64_t calibration_batch) {
  use_quantized_engine(engine);
  check<ConfigError>(calibration.defined() && calibration.size(0) > 0, "--calib-images must be positive");

  auto unit = std::make_shared<jit::CompilationUnit>();
  jit::Module float_module(c10::QualifiedName("__torch__.sscl.Int8Classifier"), unit, /*shouldMangle=*/true);
  float_module.register_attribute("training", c10::BoolType::get(), false);
  auto graph = frozen_fp32.get_method("forward").graph()->copy();
  graph->inputs()[0]->setType(float_module.type());
  Parameterizer(float_module, *graph).run();
  float_module.type()->addMethod(
      unit->create_function(c10::QualifiedName(*float_module.type()->name(), "forward"), graph));

  QuantizedModel result;
  result.engine = engine;
  result.activation_qscheme = "per_tensor_affine";
  const bool per_channel = engine == "onednn";
  result.weight_qscheme = per_channel ? "per_channel_symmetric" : "per_tensor_symmetric";
  // onednn's x86 kernels multiply u8 activations by s8 weights in pairs summed
  // into int16 (vpmaddubsw) on CPUs without VNNI, which saturates for full
  // 8-bit activations: 7 bits there, as PyTorch's x86 qconfig (reduce_range).
  result.activation_quant_max = per_channel ? 127 : 255;
  const auto activation = make_observer(unit, "ActivationMinMaxObserver", at::kQUInt8, at::kPerTensorAffine, -1, 0,
                                        result.activation_quant_max);
  const auto weight =
      make_observer(unit, "WeightMinMaxObserver", at::kQInt8,
                    per_channel ? at::kPerChannelSymmetric : at::kPerTensorSymmetric, per_channel ? 0 : -1, -128, 127);
  const jit::QConfigDict qconfig{{"", jit::QConfig{activation, weight}}};
  jit::Module observed = jit::InsertObservers(float_module, "forward", qconfig, /*inplace=*/false);

  torch::NoGradGuard no_grad;
  for (int64_t start = 0; start < calibration.size(0); start += calibration_batch) {
    const int64_t n = std::min(calibration_batch, calibration.size(0) - start);
    std::vector<c10::IValue> inputs{calibration.narrow(0, start, n)};
    if (calibration_task_ids.defined()) inputs.emplace_back(calibration_task_ids.narrow(0, start, n));
    observed.forward(inputs);
  }
  jit::Module quantized = jit::InsertQuantDeQuant(observed, "forward", /*inplace=*/false, /*debug=*/false);
  result.module = jit::Finalize(quantized);
  const auto& final_graph = *result.module.get_method("forward").graph();
  result.quantized_layers =
      count_kinds(final_graph, {"quantized::conv1d", "quantized::conv2d", "quantized::conv2d_relu", "quantized::linear",
                                "quantized::linear_relu"});
  result.float_layers =
      count_kinds(final_graph, {"aten::conv1d", "aten::conv2d", "aten::_convolution", "aten::linear", "aten::addmm"});
  result.quantized_batch_norms = count_kinds(final_graph, {"quantized::batch_norm", "quantized::batch_norm1d",
                                                           "quantized::batch_norm2d", "quantized::batch_norm2d_relu"});
  result.float_batch_norms = count_kinds(final_graph, {"aten::batch_norm"});
  return result;
}

}  // namespace sscl
