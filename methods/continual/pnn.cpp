#include "methods/continual/pnn.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include <limits>
#include <string>

#include "core/error.h"
#include "core/method.h"
#include "core/random.h"
#include "methods/common/scoped_torch_seed.h"

namespace sscl {

ProgressiveNet::ProgressiveNet(Classifier model, std::vector<std::vector<int64_t>> task_classes, torch::Device device,
                               double alpha_init)
    : model_(std::move(model)), task_classes_(std::move(task_classes)), device_(device), alpha_init_(alpha_init) {
  check<Error>(!task_classes_.empty(), "pnn needs the classes of every task (one head per task)");
  for (const auto& classes : task_classes_) class_ids_.push_back(torch::tensor(classes, torch::kLong).to(device_));
  // Column 0 shares the model's backbone; its head is the model's (head_logits).
  auto backbone = std::dynamic_pointer_cast<Backbone>(model_->backbone().shared_from_this());
  columns_.push_back(PnnColumn(backbone, 0, 0, alpha_init_));
}

void ProgressiveNet::add_column(std::shared_ptr<Backbone> backbone) {
  const int c = num_columns();
  check<Error>(c < static_cast<int>(task_classes_.size()), "pnn: no task for a column " + std::to_string(c) + " (" +
                                                               std::to_string(task_classes_.size()) + " tasks)");
  for (int j = 0; j < c; ++j)
    for (auto& p : column_parameters(j)) {
      p.requires_grad_(false);
      p.mutable_grad() = torch::Tensor();  // the last step's gradient, stale from now on
    }
  PnnColumn column(std::move(backbone), c, static_cast<int64_t>(classes(c).size()), alpha_init_);
  column->to(device_);
  columns_.push_back(column);
}

std::vector<PnnColumnImpl::Output> ProgressiveNet::run_columns(const torch::Tensor& images, int last) {
  check<Error>(last >= 0 && last < num_columns(),
               "pnn: no column " + std::to_string(last) + " (" + std::to_string(num_columns()) + " so far)");
  std::vector<PnnColumnImpl::Output> outputs;
  std::vector<ColumnActivations> earlier;
  for (int c = 0; c <= last; ++c) {
    PnnColumnImpl::Output out;
    if (c < last) {
      torch::NoGradGuard no_grad;  // frozen columns only feed the last one
      out = columns_[c]->forward(images, earlier);
    } else {
      out = columns_[c]->forward(images, earlier);
    }
    earlier.push_back(out.stages);
    outputs.push_back(std::move(out));
  }
  return outputs;
}

torch::Tensor ProgressiveNet::head_logits(int column, const torch::Tensor& head_input) {
  if (column == 0) return model_->head(head_input).index_select(1, class_ids_[0]);
  return columns_[column]->head()(head_input);
}

torch::Tensor ProgressiveNet::task_logits(const torch::Tensor& images, int column) {
  return head_logits(column, run_columns(images, column).back().head_input);
}

torch::Tensor ProgressiveNet::to_all_classes(int column, const torch::Tensor& task_logits, double fill) const {
  const auto all = torch::full({task_logits.size(0), model_->num_classes()}, fill, task_logits.options());
  return all.index_copy(1, class_ids_.at(static_cast<size_t>(column)), task_logits);
}

torch::Tensor ProgressiveNet::logits(const torch::Tensor& images, double fill) {
  const auto outputs = run_columns(images, num_columns() - 1);
  torch::Tensor all;
  for (int c = 0; c < num_columns(); ++c) {
    const auto task = head_logits(c, outputs[c].head_input);
    all = c == 0 ? to_all_classes(0, task, fill) : all.index_copy(1, class_ids_[c], task);
  }
  return all;
}

void ProgressiveNet::set_modes(int training) {
  model_->train(training == 0);
  for (int c = 1; c < num_columns(); ++c) columns_[c]->train(c == training);
}

std::vector<torch::Tensor> ProgressiveNet::column_parameters(int column) const {
  if (column == 0) return model_->parameters();
  return columns_.at(static_cast<size_t>(column))->parameters();
}

int64_t ProgressiveNet::parameter_count(int column) const {
  int64_t n = 0;
  for (const auto& p : column_parameters(column)) n += p.numel();
  return n;
}

int64_t ProgressiveNet::adapter_parameter_count(int column) const {
  const auto& col = columns_.at(static_cast<size_t>(column));
  int64_t n = 0;
  for (int64_t a = 0; col->earlier_columns() > 0 && a < col->num_stages(); ++a)
    for (const auto& p : col->adapter(a)->parameters()) n += p.numel();
  return n;
}

namespace {

struct PnnOptions {
  double alpha_init = 0.1;
  static void declare(OptionSpec<PnnOptions>& o) {
    o.key("alpha_init", &PnnOptions::alpha_init, "adapters' alpha ~ U(0, alpha_init): \"a random small value\"").min(0);
  }
};

class Pnn : public Method {
 public:
  explicit Pnn(PnnOptions options) : options_(options) {
    traits_.scenarios = {Scenario::kTaskIL};   // column t answers for task t's classes: the task id must be known
    traits_.fresh_optimizer_each_task = true;  // each task trains a new column: the optimizer is rebuilt over it
    traits_.single_network = false;            // one column per task
    // Columns are seeded alike on every rank; the rebuilt optimizer gets its own
    // gradient averaging, and the columns' BatchNorm statistics are averaged
    // (extra_buffers) as the model's are.
    traits_.distributed = true;
  }

  std::string name() const override { return "pnn"; }

  void attach(MethodContext ctx) override {
    Method::attach(std::move(ctx));
    net_ = std::make_unique<ProgressiveNet>(model(), context().task_classes, context().device, options_.alpha_init);
  }

  void before_task(const RunState& state) override {
    while (net().num_columns() <= state.task) add_column();
  }

  LossTerms step(const TrainBatch& batch, const RunState&) override {
    auto& n = net();
    check<TrainingError>(batch.task == n.num_columns() - 1,
                         "pnn: a batch of task " + std::to_string(batch.task) + " trains column " +
                             std::to_string(batch.task) + ", but the newest column is " +
                             std::to_string(n.num_columns() - 1) + " (before_task adds the columns)");
    n.set_modes(batch.task);
    const auto task = n.task_logits(batch.labeled.images, batch.task);
    // Column t has logits for task t's classes only: the others are -inf, as a task mask.
    const auto logits = n.to_all_classes(batch.task, task, -std::numeric_limits<double>::infinity());
    return {{"sup", torch::nn::functional::cross_entropy(train_logits(logits, batch.task), batch.labeled.labels)}};
  }

  torch::Tensor predict(const torch::Tensor& images) override {
    net().set_modes(-1);
    return net().logits(images);
  }

  std::vector<torch::Tensor> extra_buffers() override {
    std::vector<torch::Tensor> out;
    for (int c = 1; c < net().num_columns(); ++c)
      for (const auto& b : net().column(c)->buffers()) out.push_back(b);
    return out;
  }

  std::vector<torch::Tensor> trainable_parameters() override {
    return net().column_parameters(net().num_columns() - 1);
  }

  std::vector<std::pair<std::string, double>> stats() const override {
    if (!net_) return {};
    std::vector<std::pair<std::string, double>> out;
    int64_t total = 0, adapters = 0;
    for (int c = 0; c < net_->num_columns(); ++c) {
      const int64_t n = net_->parameter_count(c);
      out.emplace_back("parameters_column_" + std::to_string(c), static_cast<double>(n));
      total += n;
      adapters += net_->adapter_parameter_count(c);
    }
    out.emplace_back("parameters_adapters", static_cast<double>(adapters));
    out.emplace_back("parameters_total", static_cast<double>(total));
    out.emplace_back("columns", static_cast<double>(net_->num_columns()));
    return out;
  }

  // Columns 1.. (column 0 is the model, saved with it); a load first adds the
  // checkpoint's columns (seeded as in training), then reads their values.
  void visit_state(StateVisitor& s) override {
    int columns = net().num_columns();
    s("columns", columns);
    if (s.loading()) {
      while (net().num_columns() < columns) add_column();
      check<Error>(net().num_columns() == columns, "pnn: the checkpoint holds " + std::to_string(columns) +
                                                       " columns, the network has " +
                                                       std::to_string(net().num_columns()));
    }
    for (int c = 1; c < columns; ++c) s("column" + std::to_string(c), *net().column(c));
  }

 private:
  ProgressiveNet& net() {
    check<Error>(net_ != nullptr, "method 'pnn' is not attached to a model");
    return *net_;
  }

  void add_column() {
    check<Error>(static_cast<bool>(context().make_backbone),
                 "method 'pnn' needs make_backbone in its context to build its columns");
    const int c = net().num_columns();
    ScopedTorchSeed seed(stream_seed(context().seed, "pnn.column_init", c));
    net().add_column(context().make_backbone());
  }

  PnnOptions options_;
  std::unique_ptr<ProgressiveNet> net_;
};

SSCL_REGISTER_METHOD("pnn", Pnn, PnnOptions{},
                     "PNN: a new column per task, with lateral adapters from the frozen earlier ones (task-IL)");

}  // namespace
}  // namespace sscl
