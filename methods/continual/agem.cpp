#include "methods/continual/agem.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include "core/error.h"
#include "core/random.h"
#include "methods/common/replay.h"

namespace sscl {

at::Tensor agem_project(const at::Tensor& g, const at::Tensor& g_ref) {
  const auto dot = torch::dot(g, g_ref);
  if (dot.item<double>() >= 0) return g;
  return g - (dot / torch::dot(g_ref, g_ref)) * g_ref;
}

at::Tensor flat_gradient(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> parts;
  parts.reserve(params.size());
  for (const auto& p : params)
    parts.push_back(p.grad().defined() ? p.grad().reshape({-1}) : torch::zeros({p.numel()}, p.options()));
  return torch::cat(parts);
}

void assign_flat_gradient(const std::vector<at::Tensor>& params, const at::Tensor& flat) {
  int64_t offset = 0;
  for (const auto& p : params) {
    const auto slice = flat.narrow(0, offset, p.numel()).view_as(p);
    offset += p.numel();
    auto& grad = p.mutable_grad();
    if (grad.defined())
      grad.copy_(slice);
    else
      grad = slice.clone();
  }
  check<Error>(offset == flat.numel(), "assign_flat_gradient: the flat gradient does not match the parameters");
}

Agem::Agem(AgemOptions options) : options_(options), memory_(options.buffer_size, ReplayPolicy::kReservoir) {}

LossTerms Agem::step(const TrainBatch& batch, const RunState& state) {
  pending_ = batch.labeled;
  pending_task_ = batch.task;
  return forward_current(batch, state).terms;
}

void Agem::after_backward(const RunState& state) {
  if (memory_.empty()) return;
  std::vector<at::Tensor> params;
  for (const auto& p : trainable_parameters())
    if (p.requires_grad()) params.push_back(p);
  if (params.empty()) return;

  const int64_t n = options_.minibatch_size > 0 ? options_.minibatch_size : context().batch_size;
  Rng rng = this->rng("agem.reference_draw", state.task, state.iter);
  const auto memory = draw_replay_batch(memory_, n, data(), View::kWeak, rng, context().device);
  const auto logits = train_logits(model()->forward(memory.images), memory.tasks);
  const auto loss = torch::nn::functional::cross_entropy(logits, memory.labels);
  // The reference gradient, without touching .grad (which holds g).
  const auto grads = torch::autograd::grad({loss}, params, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                           /*create_graph=*/false, /*allow_unused=*/true);
  std::vector<at::Tensor> ref_parts;
  for (size_t i = 0; i < params.size(); ++i)
    ref_parts.push_back(grads[i].defined() ? grads[i].reshape({-1})
                                           : torch::zeros({params[i].numel()}, params[i].options()));
  const auto g_ref = torch::cat(ref_parts);
  const auto g = flat_gradient(params);

  ++checks_;
  if (torch::dot(g, g_ref).item<double>() >= 0) return;
  ++projections_;
  assign_flat_gradient(params, agem_project(g, g_ref));
}

void Agem::after_iter(const RunState& state) {
  // Offered after the optimizer step, so a batch never serves as its own reference.
  if (!pending_.labels.defined()) return;
  Rng rng = this->rng("agem.offer", pending_task_, state.iter);
  memory_.add(labeled_offer(pending_, pending_task_, data()), rng);
  pending_ = LabeledBatch{};
}

std::vector<std::pair<std::string, double>> Agem::stats() const {
  auto stats = replay_stats(memory_);
  stats.insert(stats.end(), {{"projection_rate", checks_ > 0 ? static_cast<double>(projections_) / checks_ : 0.0}});
  return stats;
}

void Agem::save_state(torch::serialize::OutputArchive& archive) const {
  memory_.save(archive, "agem.memory.");
  archive.write("agem.counters", torch::tensor({checks_, projections_}, torch::kLong));
}

void Agem::load_state(torch::serialize::InputArchive& archive) {
  memory_.load(archive, "agem.memory.");
  torch::Tensor counters;
  archive.read("agem.counters", counters);
  checks_ = counters[0].item<int64_t>();
  projections_ = counters[1].item<int64_t>();
  pending_ = LabeledBatch{};
}

namespace {

std::unique_ptr<Method> make_agem(const ConfigSection& s) {
  const AgemOptions o = read_replay_options(s, 1);
  return std::make_unique<Agem>(o);
}

SSCL_REGISTER(MethodRegistry, "agem", make_agem);

}  // namespace
}  // namespace sscl
