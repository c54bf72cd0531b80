#include "methods/continual/der.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

namespace sscl {

at::Tensor der_logit_loss(const at::Tensor& replay_logits, const at::Tensor& stored_logits) {
  return torch::mse_loss(replay_logits, stored_logits.to(replay_logits.dtype()));
}

Der::Der(DerOptions options) : Er(options.replay), options_der_(options) {}

void Der::attach(MethodContext ctx) {
  Method::attach(std::move(ctx));
  buffer_ = ReplayBuffer(options_.buffer_size, ReplayPolicy::kReservoir, ReplayFields{model()->num_classes(), false});
}

LossTerms Der::step(const TrainBatch& batch, const RunState& state) {
  namespace F = torch::nn::functional;
  Rng rng = this->rng("der.replay", batch.task, state.iter);  // both draws and the offer
  // Separate forward passes for the current batch and each draw, as mammoth's DER.
  auto current = forward_current(batch, state);
  const auto logits = current.labeled_logits;
  LossTerms terms = std::move(current.terms);
  const auto zero = torch::zeros({}, logits.options());
  const auto draw = draw_replay_batch(buffer_, minibatch_size(), data(), View::kWeak, rng, context().device);
  auto mse = zero;
  if (draw.size() > 0) mse = options_der_.alpha * der_logit_loss(model()->forward(draw.images), draw.logits);
  terms.emplace_back("der_mse", mse);
  if (options_der_.plus_plus) {
    const auto second = draw_replay_batch(buffer_, minibatch_size(), data(), View::kWeak, rng, context().device);
    auto ce = zero;
    if (second.size() > 0) {
      const auto second_logits = train_logits(model()->forward(second.images), second.tasks);
      ce = options_der_.beta * F::cross_entropy(second_logits, second.labels);
    }
    terms.emplace_back("der_ce", ce);
  }
  // The stored targets: this forward's raw logits over every class (no task mask).
  offer(batch, rng, logits);
  return terms;
}

namespace {

std::unique_ptr<Method> make_der(const ConfigSection& s) {
  DerOptions o;
  o.replay = read_replay_options(s);
  o.alpha = s.get_or("alpha", o.alpha);
  if (o.alpha < 0) s.fail("alpha", "must be >= 0");
  return std::make_unique<Der>(o);
}

// DER++'s defaults: the paper's CIFAR-10 buffer-200 values.
std::unique_ptr<Method> make_derpp(const ConfigSection& s) {
  DerOptions o;
  o.replay = read_replay_options(s);
  o.plus_plus = true;
  o.alpha = s.get_or("alpha", 0.1);
  o.beta = s.get_or("beta", 0.5);
  if (o.alpha < 0) s.fail("alpha", "must be >= 0");
  if (o.beta < 0) s.fail("beta", "must be >= 0");
  return std::make_unique<Der>(o);
}

SSCL_REGISTER(MethodRegistry, "der", make_der);
SSCL_REGISTER(MethodRegistry, "derpp", make_derpp);

}  // namespace
}  // namespace sscl
