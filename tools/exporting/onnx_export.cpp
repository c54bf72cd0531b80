#include "tools/exporting/onnx_export.h"

#include <ATen/ATen.h>
#include <onnx/checker.h>
#include <onnx/common/version.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>

#include <limits>
#include <set>
#include <unordered_map>

#include "core/error.h"

namespace sscl {
namespace {

namespace jit = torch::jit;
using onnx::AttributeProto;
using onnx::TensorProto;

// Writes the ONNX graph of one frozen TorchScript graph. Tensor values get
// their ONNX names as their nodes are translated; constants become
// initializers when an op takes them as tensors, and are read as attributes
// when it takes them as settings (strides, axes).
class Translator {
 public:
  // `task` >= 0: the file of that task's head, of a trace that takes task ids.
  Translator(onnx::GraphProto& graph, int64_t task) : graph_(graph), task_(task) {}

  void run(const jit::Graph& graph) {
    const auto inputs = graph.inputs();  // self, images[, task_ids]
    const bool task_id_input = inputs.size() == 3;
    check<Error>(inputs.size() == 2 || task_id_input,
                 "export --onnx: the trace's forward has " + std::to_string(inputs.size() - 1) + " inputs");
    check<Error>(task_id_input == (task_ >= 0), task_id_input
                                                    ? "export --onnx: a multi-head model is written one file per task"
                                                    : "export --onnx: a task given for a single-head model");
    names_[inputs[1]] = "images";
    check<Error>(graph.outputs().size() == 1, "export --onnx: the trace's forward has more than one output");
    output_ = graph.outputs()[0];
    for (const jit::Node* node : graph.nodes()) translate(*node);
    if (!names_.count(output_) || names_.at(output_) != "logits") emit("Identity", {name(output_)}, {"logits"});
  }

  std::set<std::string> op_types;

 private:
  onnx::GraphProto& graph_;
  std::unordered_map<const jit::Value*, std::string> names_;
  const int64_t task_;
  const jit::Value* output_ = nullptr;
  int64_t next_ = 0;

  [[noreturn]] static void refuse(const jit::Node& node, const std::string& why) {
    throw Error("export --onnx: " + std::string(node.kind().toQualString()) + " has no ONNX translation (" + why + ")");
  }

  // The name of a computed value's ONNX tensor: "logits" for the graph's output.
  std::string define(const jit::Value* v) {
    const std::string n = v == output_ ? "logits" : "t" + std::to_string(next_++);
    names_[v] = n;
    return n;
  }

  // `out` is the same tensor as `in` (eval-mode dropout, contiguous).
  void alias(const jit::Value* out, const jit::Value* in) {
    if (out == output_)
      emit("Identity", {name(in)}, {define(out)});
    else
      names_[out] = name(in);
  }

  std::string initializer(const at::Tensor& tensor) {
    const at::Tensor t = tensor.contiguous().to(at::kCPU);
    TensorProto* init = graph_.add_initializer();
    init->set_name("w" + std::to_string(graph_.initializer_size() - 1));
    for (int64_t d : t.sizes()) init->add_dims(d);
    switch (t.scalar_type()) {
      case at::kFloat: init->set_data_type(TensorProto::FLOAT); break;
      case at::kLong: init->set_data_type(TensorProto::INT64); break;
      default: throw Error("export --onnx: a constant tensor of type " + std::string(c10::toString(t.scalar_type())));
    }
    // Raw data is little-endian, as every CPU we run on.
    init->set_raw_data(t.data_ptr(), t.numel() * t.element_size());
    return init->name();
  }

  // The ONNX tensor of an op's tensor input: a value computed before, or a
  // constant (a tensor, or a number that the op broadcasts, as float32).
  std::string name(const jit::Value* v) {
    if (const auto it = names_.find(v); it != names_.end()) return it->second;
    const auto constant = jit::toIValue(v);
    std::string n;
    if (constant && constant->isTensor())
      n = initializer(constant->toTensor());
    else if (constant && (constant->isDouble() || constant->isInt()))
      n = initializer(at::scalar_tensor(constant->toScalar().to<double>(), at::kFloat));
    else
      throw Error("export --onnx: %" + v->debugName() + " (made by " + v->node()->kind().toQualString() +
                  ") is not a tensor that ONNX has");
    names_[v] = n;
    return n;
  }

  static bool is_none(const jit::Value* v) { return v->type()->kind() == c10::TypeKind::NoneType; }

  static c10::IValue constant(const jit::Node& node, size_t i) {
    const auto value = jit::toIValue(node.input(i));
    if (!value) refuse(node, "input " + std::to_string(i) + " is not a constant");
    return *value;
  }
  static int64_t int_input(const jit::Node& node, size_t i) { return constant(node, i).toInt(); }
  static double double_input(const jit::Node& node, size_t i) { return constant(node, i).toScalar().to<double>(); }
  static bool bool_input(const jit::Node& node, size_t i) { return constant(node, i).toBool(); }
  static std::vector<int64_t> ints_input(const jit::Node& node, size_t i) {
    const jit::Value* v = node.input(i);
    if (const auto value = jit::toIValue(v); value && value->isIntList()) return value->toIntVector();
    if (v->node()->kind() != c10::prim::ListConstruct) refuse(node, "input " + std::to_string(i) + " is not a list");
    std::vector<int64_t> out;
    for (const jit::Value* e : v->node()->inputs()) {
      const auto value = jit::toIValue(e);
      if (!value || !value->isInt()) refuse(node, "input " + std::to_string(i) + " is not a constant list");
      out.push_back(value->toInt());
    }
    return out;
  }

  onnx::NodeProto& emit(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs) {
    onnx::NodeProto* node = graph_.add_node();
    node->set_op_type(op);
    node->set_name(op + "_" + std::to_string(graph_.node_size() - 1));
    for (const auto& i : inputs) node->add_input(i);
    for (const auto& o : outputs) node->add_output(o);
    op_types.insert(op);
    return *node;
  }
  static void attribute(onnx::NodeProto& node, const std::string& key, int64_t value) {
    AttributeProto* a = node.add_attribute();
    a->set_name(key);
    a->set_type(AttributeProto::INT);
    a->set_i(value);
  }
  static void attribute(onnx::NodeProto& node, const std::string& key, double value) {
    AttributeProto* a = node.add_attribute();
    a->set_name(key);
    a->set_type(AttributeProto::FLOAT);
    a->set_f(static_cast<float>(value));
  }
  static void attribute(onnx::NodeProto& node, const std::string& key, const std::vector<int64_t>& values) {
    AttributeProto* a = node.add_attribute();
    a->set_name(key);
    a->set_type(AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  }

  // One op of `kind` on the node's first `arity` inputs.
  void elementwise(const jit::Node& node, const std::string& op, size_t arity) {
    std::vector<std::string> inputs;
    for (size_t i = 0; i < arity; ++i) inputs.push_back(name(node.input(i)));
    emit(op, inputs, {define(node.output())});
  }

  // PyTorch's symmetric padding [p...] as ONNX's begins then ends.
  static std::vector<int64_t> pads(const std::vector<int64_t>& padding) {
    std::vector<int64_t> out(padding);
    out.insert(out.end(), padding.begin(), padding.end());
    return out;
  }

  void convolution(const jit::Node& node) {
    const bool full = node.kind() == c10::aten::_convolution;
    if (full && bool_input(node, 6)) refuse(node, "transposed convolution");
    const auto weight = jit::toIValue(node.input(1));
    if (!weight || !weight->isTensor()) refuse(node, "its weight is not a constant");
    std::vector<std::string> inputs{name(node.input(0)), name(node.input(1))};
    if (!is_none(node.input(2))) inputs.push_back(name(node.input(2)));
    auto& conv = emit("Conv", inputs, {define(node.output())});
    const auto kernel = weight->toTensor().sizes().slice(2).vec();
    attribute(conv, "kernel_shape", kernel);
    attribute(conv, "strides", ints_input(node, 3));
    if (node.input(4)->type()->kind() == c10::TypeKind::StringType) refuse(node, "padding given by name");
    attribute(conv, "pads", pads(ints_input(node, 4)));
    attribute(conv, "dilations", ints_input(node, 5));
    attribute(conv, "group", int_input(node, full ? 8 : 6));
  }

  void pool(const jit::Node& node, const std::string& op) {
    const auto kernel = ints_input(node, 1);
    auto stride = ints_input(node, 2);
    if (stride.empty()) stride = kernel;  // PyTorch's default stride is the kernel
    auto& pool = emit(op, {name(node.input(0))}, {define(node.output())});
    attribute(pool, "kernel_shape", kernel);
    attribute(pool, "strides", stride);
    attribute(pool, "pads", pads(ints_input(node, 3)));
    if (op == "MaxPool") {
      const auto dilation = ints_input(node, 4);
      if (std::any_of(dilation.begin(), dilation.end(), [](int64_t d) { return d != 1; }))
        attribute(pool, "dilations", dilation);
      attribute(pool, "ceil_mode", static_cast<int64_t>(bool_input(node, 5)));
    } else {
      if (!is_none(node.input(6))) refuse(node, "divisor_override");
      attribute(pool, "ceil_mode", static_cast<int64_t>(bool_input(node, 4)));
      attribute(pool, "count_include_pad", static_cast<int64_t>(bool_input(node, 5)));
    }
  }

  // Reshape's target shape: constants, and x.size(d) at position d taken as
  // ONNX's 0 ("this dimension of the input"), as a traced view(x.size(0), -1) has.
  std::vector<int64_t> reshape_target(const jit::Node& node) {
    const jit::Value* list = node.input(1);
    if (const auto value = jit::toIValue(list); value && value->isIntList()) return value->toIntVector();
    if (list->node()->kind() != c10::prim::ListConstruct) refuse(node, "the shape is not a list");
    std::vector<int64_t> out;
    for (size_t d = 0; d < list->node()->inputs().size(); ++d) {
      const jit::Value* e = list->node()->input(d);
      if (const auto value = jit::toIValue(e); value && value->isInt()) {
        out.push_back(value->toInt());
        continue;
      }
      const jit::Node* size = e->node();
      if (size->kind() == c10::aten::Int) size = size->input(0)->node();
      if (size->kind() == c10::prim::NumToTensor) size = size->input(0)->node();
      const auto dim =
          size->kind() == c10::aten::size && size->inputs().size() == 2 ? jit::toIValue(size->input(1)) : c10::nullopt;
      if (!dim || size->input(0) != node.input(0) || dim->toInt() != static_cast<int64_t>(d))
        refuse(node, "dimension " + std::to_string(d) + " of the shape is computed");
      out.push_back(0);
    }
    return out;
  }

  // The masked_fill of the task-mask pattern that starts at `select`
  // (index_select of a constant bool [tasks, classes] along 0, used only by a
  // logical_not, used only as the mask of a masked_fill with -inf), or null.
  static const jit::Node* task_mask_fill(const jit::Node& select) {
    if (select.kind() != c10::aten::index_select) return nullptr;
    const auto mask = jit::toIValue(select.input(0));
    const auto dim = jit::toIValue(select.input(1));
    if (!mask || !mask->isTensor() || mask->toTensor().scalar_type() != at::kBool || mask->toTensor().dim() != 2 ||
        !dim || !dim->isInt() || dim->toInt() != 0 || select.output()->uses().size() != 1)
      return nullptr;
    const jit::Node* negation = select.output()->uses()[0].user;
    if (negation->kind() != c10::aten::logical_not || negation->output()->uses().size() != 1) return nullptr;
    const auto& use = negation->output()->uses()[0];
    const jit::Node* fill = use.user;
    if (fill->kind() != c10::aten::masked_fill || use.offset != 1) return nullptr;
    const auto value = jit::toIValue(fill->input(2));
    const bool minus_infinity = value && (value->isDouble() || value->isInt()) &&
                                value->toScalar().to<double>() == -std::numeric_limits<double>::infinity();
    return minus_infinity ? fill : nullptr;
  }

  void translate(const jit::Node& node) {
    namespace aten = c10::aten;
    const auto k = node.kind();
    // Settings and shape arithmetic, read where they are used.
    if (k == c10::prim::Constant || k == c10::prim::ListConstruct || k == aten::size || k == aten::Int ||
        k == c10::prim::NumToTensor)
      return;
    if (k == aten::_convolution || k == aten::conv2d) return convolution(node);
    if (k == aten::relu || k == aten::relu_) return elementwise(node, "Relu", 1);
    if (k == aten::sigmoid) return elementwise(node, "Sigmoid", 1);
    if (k == aten::tanh) return elementwise(node, "Tanh", 1);
    if (k == aten::hardtanh || k == aten::hardtanh_ || k == aten::relu6) {
      const bool six = k == aten::relu6;
      const std::string lo = six ? initializer(at::scalar_tensor(0.0, at::kFloat)) : name(node.input(1));
      const std::string hi = six ? initializer(at::scalar_tensor(6.0, at::kFloat)) : name(node.input(2));
      emit("Clip", {name(node.input(0)), lo, hi}, {define(node.output())});
      return;
    }
    if (k == aten::leaky_relu) {
      auto& op = emit("LeakyRelu", {name(node.input(0))}, {define(node.output())});
      attribute(op, "alpha", double_input(node, 1));
      return;
    }
    if (k == aten::add || k == aten::sub) {
      if (node.inputs().size() > 2 && double_input(node, 2) != 1.0) refuse(node, "alpha other than 1");
      return elementwise(node, k == aten::add ? "Add" : "Sub", 2);
    }
    if (k == aten::mul) return elementwise(node, "Mul", 2);
    if (k == aten::div) {
      if (node.inputs().size() > 2) refuse(node, "a rounding mode");
      return elementwise(node, "Div", 2);
    }
    if (k == aten::matmul || k == aten::mm) return elementwise(node, "MatMul", 2);
    if (k == aten::addmm) {  // beta * b + alpha * (x @ m)
      // A constant m (a linear layer's W^T) goes in as W with transB, the form
      // PyTorch's exporter writes and OpenCV's importer reads.
      const auto m = jit::toIValue(node.input(2));
      const bool weight = m && m->isTensor() && m->toTensor().dim() == 2;
      const std::string b = weight ? initializer(m->toTensor().t()) : name(node.input(2));
      auto& gemm = emit("Gemm", {name(node.input(1)), b, name(node.input(0))}, {define(node.output())});
      if (weight) attribute(gemm, "transB", int64_t{1});
      if (const double beta = double_input(node, 3); beta != 1.0) attribute(gemm, "beta", beta);
      if (const double alpha = double_input(node, 4); alpha != 1.0) attribute(gemm, "alpha", alpha);
      return;
    }
    if (k == aten::linear) {  // x @ W^T + b
      std::vector<std::string> inputs{name(node.input(0)), name(node.input(1))};
      if (!is_none(node.input(2))) inputs.push_back(name(node.input(2)));
      attribute(emit("Gemm", inputs, {define(node.output())}), "transB", int64_t{1});
      return;
    }
    if (k == aten::t) {
      attribute(emit("Transpose", {name(node.input(0))}, {define(node.output())}), "perm", std::vector<int64_t>{1, 0});
      return;
    }
    if (k == aten::max_pool2d) return pool(node, "MaxPool");
    if (k == aten::avg_pool2d) return pool(node, "AveragePool");
    if (k == aten::adaptive_avg_pool2d) {
      if (ints_input(node, 1) != std::vector<int64_t>{1, 1}) refuse(node, "an output size other than 1 x 1");
      return elementwise(node, "GlobalAveragePool", 1);
    }
    if (k == aten::mean) {
      if (node.inputs().size() != 4 || !is_none(node.input(3))) refuse(node, "a mean over every dimension or a dtype");
      auto& mean = emit("ReduceMean", {name(node.input(0))}, {define(node.output())});
      attribute(mean, "axes", ints_input(node, 1));
      attribute(mean, "keepdims", static_cast<int64_t>(bool_input(node, 2)));
      return;
    }
    if (k == aten::flatten) {
      // ONNX's Flatten keeps dimensions [0, axis) as one: torch's flatten(x, 1, -1) exactly.
      if (int_input(node, 1) != 1 || int_input(node, 2) != -1) refuse(node, "dimensions other than 1..-1");
      attribute(emit("Flatten", {name(node.input(0))}, {define(node.output())}), "axis", int64_t{1});
      return;
    }
    if (k == aten::view || k == aten::reshape) {
      const std::string shape = initializer(at::tensor(reshape_target(node), at::kLong));
      emit("Reshape", {name(node.input(0)), shape}, {define(node.output())});
      return;
    }
    if (k == aten::batch_norm) {
      if (bool_input(node, 5)) refuse(node, "training mode");
      const auto mean = jit::toIValue(node.input(3));
      if (!mean || !mean->isTensor()) refuse(node, "no running statistics");
      const int64_t channels = mean->toTensor().size(0);
      const std::string scale = is_none(node.input(1)) ? initializer(at::ones({channels})) : name(node.input(1));
      const std::string bias = is_none(node.input(2)) ? initializer(at::zeros({channels})) : name(node.input(2));
      auto& bn =
          emit("BatchNormalization", {name(node.input(0)), scale, bias, name(node.input(3)), name(node.input(4))},
               {define(node.output())});
      attribute(bn, "epsilon", double_input(node, 7));
      return;
    }
    if (k == aten::cat) {
      const jit::Node* list = node.input(0)->node();
      if (list->kind() != c10::prim::ListConstruct) refuse(node, "the tensors are not a list");
      std::vector<std::string> inputs;
      for (const jit::Value* v : list->inputs()) inputs.push_back(name(v));
      attribute(emit("Concat", inputs, {define(node.output())}), "axis", int_input(node, 1));
      return;
    }
    if (k == aten::dropout || k == aten::feature_dropout || k == aten::alpha_dropout) {
      if (bool_input(node, 2)) refuse(node, "training mode");
      return alias(node.output(), node.input(0));
    }
    if (k == aten::contiguous || k == aten::detach || k == aten::clone) return alias(node.output(), node.input(0));
    // The multi-head task mask, masked_fill(logits, logical_not(index_select(mask,
    // 0, task_ids)), -inf): for the file of task t, logits + the additive row of
    // t (0 inside the task, -inf outside), which is exact.
    if (k == aten::index_select || k == aten::logical_not) {
      const jit::Node* select = k == aten::index_select ? &node : node.input(0)->node();
      if (task_mask_fill(*select)) return;  // written with the masked_fill
    }
    if (k == aten::masked_fill) {
      const jit::Node* negation = node.input(1)->node();
      if (negation->kind() == aten::logical_not && task_mask_fill(*negation->input(0)->node()) == &node) {
        const at::Tensor mask = jit::toIValue(negation->input(0)->node()->input(0))->toTensor();
        check<ConfigError>(task_ < mask.size(0), "export --onnx: task " + std::to_string(task_) + " of a model with " +
                                                     std::to_string(mask.size(0)) + " tasks");
        const at::Tensor row = mask[task_];  // [classes]: OpenCV adds it as a bias, over the batch
        const auto minus_infinity = -std::numeric_limits<float>::infinity();
        const std::string additive = initializer(at::zeros(row.sizes()).masked_fill(row.logical_not(), minus_infinity));
        emit("Add", {name(node.input(0)), additive}, {define(node.output())});
        return;
      }
    }
    if (k == aten::index_select) {
      // A constant selection of columns (the multi-head classifier puts its heads'
      // classes back in order): a product with the 0/1 selection matrix, exact
      // for finite values, as OpenCV 4.6 gathers a single index only.
      const auto index = jit::toIValue(node.input(2));
      if (index && index->isTensor() && int_input(node, 1) == 1 && !jit::toIValue(node.input(0))) {
        const at::Tensor columns = index->toTensor().to(at::kLong);
        check<Error>(columns.dim() == 1 && columns.numel() > 0 && columns.min().item<int64_t>() >= 0,
                     "export --onnx: aten::index_select of columns that are not a list of indices");
        const int64_t rows = columns.max().item<int64_t>() + 1;
        at::Tensor selection = at::zeros({rows, columns.numel()});
        selection.index_put_({columns, at::arange(columns.numel())}, 1.0);
        emit("MatMul", {name(node.input(0)), initializer(selection)}, {define(node.output())});
        return;
      }
      refuse(node, "indices that are not constant columns");
    }
    refuse(node, "not one of the ops that sscl's backbones trace to");
  }
};

void set_tensor_type(onnx::ValueInfoProto& info, const std::string& name, int32_t elem_type,
                     const std::vector<int64_t>& fixed_dims) {
  info.set_name(name);
  auto* tensor = info.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(elem_type);
  auto* shape = tensor->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (int64_t d : fixed_dims) shape->add_dim()->set_dim_value(d);
}

}  // namespace

void check_onnx_opset(int64_t opset) {
  check<ConfigError>(opset >= kOnnxMinOpset && opset <= kOnnxMaxOpset,
                     "--opset " + std::to_string(opset) + ": the ONNX export writes opsets " +
                         std::to_string(kOnnxMinOpset) + " to " + std::to_string(kOnnxMaxOpset));
}

OnnxModel export_onnx(const torch::jit::Module& traced, const std::vector<int64_t>& chw, int64_t num_classes,
                      const std::string& producer_version, int64_t opset, int64_t task) {
  check_onnx_opset(opset);
  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION);
  model.set_producer_name("sscl");
  model.set_producer_version(producer_version);
  auto* opset_import = model.add_opset_import();
  opset_import->set_domain("");
  opset_import->set_version(opset);
  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name("sscl_classifier");
  set_tensor_type(*graph.add_input(), "images", TensorProto::FLOAT, chw);
  set_tensor_type(*graph.add_output(), "logits", TensorProto::FLOAT, {num_classes});
  Translator translator(graph, task);
  auto& module = const_cast<torch::jit::Module&>(traced);  // get_method is not const
  translator.run(*module.get_method("forward").graph());

  // The checker wants every graph output's shape declared; the shape inference
  // then runs on a copy whose output shape is left for it to find.
  onnx::ModelProto inferred = model;
  inferred.mutable_graph()->mutable_output(0)->mutable_type()->mutable_tensor_type()->clear_shape();
  try {
    onnx::checker::check_model(model);
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict=*/1));
  } catch (const std::exception& e) {
    throw Error(std::string("export --onnx: ONNX's checker refused the graph: ") + e.what());
  }
  const auto& shape = inferred.graph().output(0).type().tensor_type().shape();
  const bool as_declared = shape.dim_size() == 2 && shape.dim(0).dim_param() == "batch" &&
                           shape.dim(1).has_dim_value() && shape.dim(1).dim_value() == num_classes;
  check<Error>(as_declared, "export --onnx: ONNX's shape inference does not find logits [batch, " +
                                std::to_string(num_classes) + "] (" + shape.ShortDebugString() + ")");

  OnnxModel result;
  result.opset = opset;
  result.nodes = model.graph().node_size();
  result.initializers = model.graph().initializer_size();
  result.op_types.assign(translator.op_types.begin(), translator.op_types.end());
  check<Error>(model.SerializeToString(&result.bytes), "export --onnx: the model could not be serialized");
  return result;
}

std::string onnx_library_version() { return onnx::LAST_RELEASE_VERSION; }

}  // namespace sscl
