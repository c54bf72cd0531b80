#include "models/model_stats.h"

#include <c10/util/Exception.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/utils.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/nn/classifier.h"

namespace sscl {
namespace {

std::string shape_text(const InputShape& shape) {
  return "[1, " + std::to_string(shape.channels) + ", " + std::to_string(shape.height) + ", " +
         std::to_string(shape.width) + "]";
}

// One line: newlines of multi-line LibTorch messages become "; ".
std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::string out;
  for (char c : text) {
    if (c == '\n')
      out += "; ";
    else
      out += c;
  }
  return out;
}

// Every parameter once (a parameter shared by two modules is listed under both names).
std::vector<torch::Tensor> unique_parameters(torch::nn::Module& model) {
  std::vector<torch::Tensor> out;
  std::unordered_set<const void*> seen;
  for (const auto& p : model.parameters(/*recurse=*/true))
    if (seen.insert(p.unsafeGetTensorImpl()).second) out.push_back(p);
  return out;
}

// Eval mode and no requires_grad for the trace; every module's training flag and
// every parameter's requires_grad are restored on destruction (also on error).
class TraceModeGuard {
 public:
  TraceModeGuard(torch::nn::Module& model, std::vector<torch::Tensor> parameters)
      : model_(model), model_training_(model.is_training()), parameters_(std::move(parameters)) {
    // modules() lists the descendants depth-first, each before its children.
    for (const auto& m : model.modules(/*include_self=*/false)) descendants_.emplace_back(m, m->is_training());
    for (const auto& p : parameters_) requires_grad_.push_back(p.requires_grad());
    model.eval();
    for (auto& p : parameters_) p.set_requires_grad(false);
  }
  ~TraceModeGuard() {
    for (size_t i = 0; i < parameters_.size(); ++i) parameters_[i].set_requires_grad(requires_grad_[i]);
    // train() recurses, so parents first and then each child sets its own flag.
    model_.train(model_training_);
    for (auto& [module, training] : descendants_) module->train(training);
  }
  TraceModeGuard(const TraceModeGuard&) = delete;
  TraceModeGuard& operator=(const TraceModeGuard&) = delete;

 private:
  torch::nn::Module& model_;
  bool model_training_;
  std::vector<std::pair<std::shared_ptr<torch::nn::Module>, bool>> descendants_;
  std::vector<torch::Tensor> parameters_;
  std::vector<bool> requires_grad_;
};

std::optional<std::vector<int64_t>> sizes_of(const torch::jit::Value* value) {
  const auto type = value->type()->cast<c10::TensorType>();
  if (!type) return std::nullopt;
  const auto sizes = type->sizes().concrete_sizes();
  if (!sizes) return std::nullopt;
  return *sizes;
}

int64_t elements(const std::vector<int64_t>& sizes) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return n;
}

enum class OpKind { kOther, kConvolution, kConvTranspose, kConvolutionGeneric, kMatrix };

OpKind kind_of(const std::string& name) {
  if (name == "aten::conv1d" || name == "aten::conv2d" || name == "aten::conv3d") return OpKind::kConvolution;
  if (name == "aten::conv_transpose1d" || name == "aten::conv_transpose2d" || name == "aten::conv_transpose3d")
    return OpKind::kConvTranspose;
  // (input, weight, bias, stride, padding, dilation, transposed, ...)
  if (name == "aten::_convolution" || name == "aten::convolution") return OpKind::kConvolutionGeneric;
  if (name == "aten::linear" || name == "aten::addmm" || name == "aten::mm" || name == "aten::matmul" ||
      name == "aten::bmm")
    return OpKind::kMatrix;
  return OpKind::kOther;
}

std::vector<int64_t> known_sizes(const torch::jit::Node* node, const torch::jit::Value* value) {
  auto sizes = sizes_of(value);
  if (!sizes)
    throw Error(std::string("model_stats: the trace recorded no shape for an input or output of ") +
                node->kind().toQualString());
  return *sizes;
}

int64_t node_macs(const torch::jit::Node* node) {
  const std::string name = node->kind().toQualString();
  OpKind kind = kind_of(name);
  if (kind == OpKind::kOther) return 0;
  const auto out = known_sizes(node, node->output(0));
  if (kind == OpKind::kMatrix) {
    // linear(input, weight, bias) and addmm(bias, mat1, mat2): the inner dimension
    // is the last one of the left operand; mm, matmul, bmm: of the first input.
    const auto left = known_sizes(node, node->input(name == "aten::addmm" ? 1 : 0));
    return left.empty() ? 0 : elements(out) * left.back();
  }
  if (kind == OpKind::kConvolutionGeneric) {
    const auto transposed = torch::jit::toIValue(node->input(6));
    kind = (transposed && transposed->isBool() && transposed->toBool()) ? OpKind::kConvTranspose : OpKind::kConvolution;
  }
  // Weight [out, in/groups, k...] for a convolution, [in, out/groups, k...] transposed.
  const auto weight = known_sizes(node, node->input(1));
  if (weight.size() < 2) return 0;
  int64_t per_element = weight[1];
  for (size_t i = 2; i < weight.size(); ++i) per_element *= weight[i];
  if (kind == OpKind::kConvolution) return elements(out) * per_element;
  return elements(known_sizes(node, node->input(0))) * per_element;  // every input element is scattered
}

int64_t block_macs(const torch::jit::Block* block) {
  int64_t macs = 0;
  for (const torch::jit::Node* node : block->nodes()) {
    macs += node_macs(node);
    for (const torch::jit::Block* inner : node->blocks()) macs += block_macs(inner);
  }
  return macs;
}

int64_t traced_macs(torch::nn::Module& model, const InputShape& shape, const ForwardFn& forward,
                    const std::vector<torch::Tensor>& parameters) {
  auto options = torch::TensorOptions().dtype(torch::kFloat32);
  for (const auto& p : parameters)
    if (p.is_floating_point()) {
      options = options.dtype(p.scalar_type()).device(p.device());
      break;
    }
  TraceModeGuard mode(model, parameters);
  torch::NoGradGuard no_grad;
  const torch::Tensor input = torch::zeros({1, shape.channels, shape.height, shape.width}, options);
  std::shared_ptr<torch::jit::tracer::TracingState> state;
  try {
    auto traced = [&](torch::jit::Stack inputs) -> torch::jit::Stack {
      torch::Tensor out = forward(inputs.at(0).toTensor());
      return {out};
    };
    state = torch::jit::tracer::trace({input}, traced, [](const torch::autograd::Variable&) {
              return std::string();
            }).first;
  } catch (const Error& e) {
    throw Error("model_stats: the forward pass of a " + shape_text(shape) + " input failed: " + one_line(e.what()));
  } catch (const c10::Error& e) {
    throw Error("model_stats: the forward pass of a " + shape_text(shape) +
                " input failed or cannot be traced: " + one_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw Error("model_stats: the forward pass of a " + shape_text(shape) +
                " input failed or cannot be traced: " + one_line(e.what()));
  }
  return block_macs(state->graph->block());
}

}  // namespace

ModelStats model_stats(torch::nn::Module& model, const InputShape& shape, const ForwardFn& forward) {
  if (shape.channels <= 0 || shape.height <= 0 || shape.width <= 0)
    throw Error("model_stats: input shape " + shape_text(shape) + " has a dimension <= 0");
  ModelStats stats;
  const std::vector<torch::Tensor> parameters = unique_parameters(model);
  for (const auto& p : parameters) {
    stats.parameters += p.numel();
    if (p.requires_grad()) stats.trainable_parameters += p.numel();
  }
  std::unordered_set<const void*> seen;
  for (const auto& b : model.buffers(/*recurse=*/true))
    if (seen.insert(b.unsafeGetTensorImpl()).second)
      stats.buffers_bytes += b.numel() * static_cast<int64_t>(b.element_size());
  stats.float32_bytes = 4.0 * static_cast<double>(stats.parameters) + static_cast<double>(stats.buffers_bytes);
  stats.int8_bytes = 1.0 * static_cast<double>(stats.parameters) + static_cast<double>(stats.buffers_bytes);
  stats.macs = traced_macs(model, shape, forward, parameters);
  return stats;
}

ModelStats model_stats(torch::nn::Module& model, const InputShape& shape) {
  if (auto* backbone = dynamic_cast<Backbone*>(&model))
    return model_stats(model, shape, [backbone](const torch::Tensor& x) { return backbone->forward(x); });
  if (auto* classifier = dynamic_cast<ClassifierImpl*>(&model))
    return model_stats(model, shape, [classifier](const torch::Tensor& x) { return classifier->forward(x); });
  if (auto* sequential = dynamic_cast<torch::nn::SequentialImpl*>(&model))
    return model_stats(model, shape, [sequential](const torch::Tensor& x) { return sequential->forward(x); });
  throw Error("model_stats: cannot call the forward of a " + model.name() +
              " (not a Backbone, Classifier or Sequential); pass a forward function");
}

}  // namespace sscl
