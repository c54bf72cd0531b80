#include "core/method.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace sscl {

SSCL_DEFINE_REGISTRY(MethodRegistry, "method", "method")

bool resolve_train_mask(const std::string& train_mask, Scenario scenario) {
  // In domain-IL a task's classes are every class: the mask would change nothing,
  // and methods that group classes by task (LwF) would count them once per task.
  if (train_mask == "task") return scenario != Scenario::kDomainIL;
  if (train_mask == "none") return false;
  if (train_mask == "auto") return scenario == Scenario::kTaskIL;
  throw ConfigError("method.train_mask = '" + train_mask + "': expected auto, task or none");
}

World& Method::world() const {
  static const std::shared_ptr<World> one = single_process_world();
  return context_.world ? *context_.world : *one;
}

void Method::attach(MethodContext context) {
  context_ = std::move(context);
  task_masks_.clear();
  stacked_task_masks_ = torch::Tensor();
  const int64_t num_classes = context_.model ? context_.model->num_classes() : 0;
  for (const auto& classes : context_.task_classes) {
    auto mask = torch::zeros({num_classes}, torch::kBool);
    for (int64_t c : classes) mask[c] = true;
    task_masks_.push_back(mask.to(context_.device));
  }
  if (!task_masks_.empty()) stacked_task_masks_ = torch::stack(task_masks_);
  if (semi_) semi_->attach(*this);
}

void Method::set_semi(std::unique_ptr<SemiLoss> semi) {
  check<ConfigError>(traits_.composes_with_semi, "method '" + name() +
                                                     "' does not compose with a semi-supervised loss (method.semi); "
                                                     "it has no current-batch term to give one");
  check<ConfigError>(!semi_, "method '" + display_name() +
                                 "' already has a semi-supervised loss; set method.semi "
                                 "only with a continual method such as \"der\"");
  check<ConfigError>(semi->keeps_supervised_loss() || !traits_.needs_plain_labeled_pass,
                     "method.semi = '" + semi->name() + "' trains on mixed labeled images, and method '" + name() +
                         "' needs the labeled images' own logits");
  semi_ = std::move(semi);
}

std::vector<Hook*> Method::lifecycle_hooks() {
  std::vector<Hook*> hooks{this};
  if (semi_) hooks.push_back(semi_.get());
  return hooks;
}

std::vector<std::pair<std::string, double>> Method::all_stats() const {
  auto out = stats();
  if (semi_)
    for (auto& [key, value] : semi_->stats()) out.emplace_back("semi." + key, value);
  return out;
}

void Method::visit_all_state(StateVisitor& visitor) {
  visitor("method", static_cast<Stateful&>(*this));
  if (semi_) visitor("semi", *semi_);
}

CurrentBatchOutput Method::forward_current(const TrainBatch& batch, const RunState& state, const at::Tensor& extra,
                                           const SupervisedLoss& supervised) {
  const SupervisedLoss& sup = supervised ? supervised : SupervisedLoss(cross_entropy_loss);
  if (semi_) return semi_->forward(batch, extra, sup, state);
  const auto& lab = batch.labeled;
  const int64_t b = lab.images.size(0);
  const int64_t e = extra.defined() ? extra.size(0) : 0;
  const auto logits = model()->forward(e > 0 ? torch::cat({lab.images, extra}) : lab.images);
  CurrentBatchOutput out;
  out.labeled_logits = logits.narrow(0, 0, b);
  out.extra_logits = logits.narrow(0, b, e);
  out.terms = {{"sup", sup(train_logits(out.labeled_logits, batch.task), lab.labels)}};
  return out;
}

torch::Tensor Method::train_logits(const torch::Tensor& logits, int task) const {
  if (!context_.mask_train_logits) return logits;
  return logits.masked_fill(~task_masks_.at(task), -std::numeric_limits<float>::infinity());
}

at::Tensor Method::zero_term() {
  auto zero = torch::zeros({}, torch::TensorOptions().device(context_.device));
  if (!world().distributed()) return zero;
  for (const auto& p : trainable_parameters())
    if (p.requires_grad()) zero = zero + p.sum() * 0;
  return zero;
}

const TaskData& Method::data() const {
  check<Error>(context_.data != nullptr, "method '" + name() + "' needs the task data in its context");
  return *context_.data;
}

torch::Tensor Method::train_logits(const torch::Tensor& logits, const torch::Tensor& tasks) const {
  if (!context_.mask_train_logits || logits.size(0) == 0) return logits;
  const auto rows = stacked_task_masks_.index_select(0, tasks.to(stacked_task_masks_.device()));
  return logits.masked_fill(~rows, -std::numeric_limits<float>::infinity());
}

void ensure_supported(const Method& method, Scenario scenario) {
  const auto& supported = method.traits().scenarios;
  if (std::find(supported.begin(), supported.end(), scenario) != supported.end()) return;
  std::string names;
  for (auto s : supported) names += (names.empty() ? "" : ", ") + to_string(s);
  throw ConfigError("method '" + method.name() + "' does not support data.scenario = '" + to_string(scenario) +
                    "' (it supports: " + names + ")");
}

}  // namespace sscl
