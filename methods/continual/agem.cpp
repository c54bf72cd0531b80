#include "methods/continual/agem.h"

#include <torch/torch.h>

#include "core/error.h"

namespace sscl {
namespace {

// `grads` (one per parameter, undefined for none) as one flat vector, zeros where undefined.
at::Tensor agem_flatten(const std::vector<at::Tensor>& grads, const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> parts;
  parts.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i)
    parts.push_back(grads[i].defined() ? grads[i].reshape({-1})
                                       : torch::zeros({params[i].numel()}, params[i].options()));
  return torch::cat(parts);
}

}  // namespace

at::Tensor agem_project(const at::Tensor& g, const at::Tensor& g_ref) {
  const auto dot = torch::dot(g, g_ref);
  if (dot.item<double>() >= 0) return g;
  return g - (dot / torch::dot(g_ref, g_ref)) * g_ref;
}

at::Tensor flat_gradient(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> grads;
  for (const auto& p : params) grads.push_back(p.grad());
  return agem_flatten(grads, params);
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

LossTerms Agem::step(const TrainBatch& batch, const RunState& state) {
  pending_.task = batch.task;
  pending_.labeled = batch.labeled;
  return forward_current(batch, state).terms;
}

void Agem::after_backward(const RunState& state) {
  if (buffer_.empty()) return;
  std::vector<at::Tensor> params;
  for (const auto& p : trainable_parameters())
    if (p.requires_grad()) params.push_back(p);
  if (params.empty()) return;
  Rng rng = this->rng("agem.reference_draw", state.task, state.iter);
  const auto draw = replay_draw(rng);
  // The reference gradient, without touching .grad (which holds g). A rank
  // whose slice of a distributed draw is empty contributes zeros.
  at::Tensor g_ref;
  if (draw.size() > 0) {
    const auto loss = replay_cross_entropy(draw);
    g_ref = agem_flatten(torch::autograd::grad({loss}, params, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                               /*create_graph=*/false, /*allow_unused=*/true),
                         params);
  } else {
    g_ref = torch::zeros_like(flat_gradient(params));
  }
  // Distributed: each rank's weighted slice gradient averaged over the ranks is
  // the whole draw's, as g already is; both then agree on every rank, and so
  // does the decision to project.
  if (world().distributed()) {
    std::vector<at::Tensor> sum{g_ref};
    world().all_reduce_sum(sum);
    g_ref = sum[0].div_(world().size());
  }
  const auto g = flat_gradient(params);
  ++checks_;
  if (torch::dot(g, g_ref).item<double>() >= 0) return;
  ++projections_;
  assign_flat_gradient(params, agem_project(g, g_ref));
}

void Agem::after_iter(const RunState& state) {
  // Offered after the optimizer step, so a batch never serves as its own reference.
  if (!pending_.labeled.labels.defined()) return;
  Rng rng = this->rng("agem.offer", pending_.task, state.iter);
  offer(pending_, rng);
  pending_ = TrainBatch{};
}

std::vector<std::pair<std::string, double>> Agem::stats() const {
  auto stats = Er::stats();
  stats.emplace_back("projection_rate", checks_ > 0 ? static_cast<double>(projections_) / checks_ : 0.0);
  return stats;
}

void Agem::visit_state(StateVisitor& s) {
  Er::visit_state(s);
  s("checks", checks_);
  s("projections", projections_);
  if (s.loading()) pending_ = TrainBatch{};
}

SSCL_REGISTER_METHOD("agem", Agem, MemoryOptions{},
                     "A-GEM: projects the gradient when it conflicts with a replay draw's reference gradient");

}  // namespace sscl
