// DER and DER++ (Buzzega et al., NeurIPS 2020): the reservoir buffer keeps each
// image's raw logits over every class from when it arrived; replay matches them:
//   DER   (eq. 6): CE(current) + alpha * MSE(f(x'), z') over a replay draw (x', z')
//   DER++ (eq. 7): DER + beta * CE(f(x''), y'') over a second, independent draw.
// MSE is mammoth's F.mse_loss, the mean over draw rows and classes (der_logit_loss).
#include <torch/torch.h>

#include "methods/continual/er.h"

namespace sscl {
namespace {

struct DerOptions {
  ReplayOptions replay;
  double alpha = 0.3;
  static void declare(OptionSpec<DerOptions>& o) {
    o.include(&DerOptions::replay);
    o.key("alpha", &DerOptions::alpha, "weight of the logit-matching term").min(0);
  }
};
struct DerppOptions : DerOptions {  // the paper's CIFAR-10 buffer-200 values
  double beta = 0.5;
  DerppOptions() { alpha = 0.1; }
  static void declare(OptionSpec<DerppOptions>& o) {
    o.include_base<DerOptions>();
    o.key("beta", &DerppOptions::beta, "weight of the replayed-label term").min(0);
  }
};

class Der : public Er {
 public:
  explicit Der(const DerOptions& o) : Er(o.replay, /*store_logits=*/true), alpha_(o.alpha) {}
  explicit Der(const DerppOptions& o) : Er(o.replay, true), alpha_(o.alpha), beta_(o.beta) {}
  std::string name() const override { return beta_ ? "derpp" : "der"; }

  LossTerms step(const TrainBatch& batch, const RunState& state) override {
    Rng rng = this->rng("der.replay", batch.task, state.iter);  // both draws and the offer
    auto current = forward_current(batch, state);               // its own pass, as mammoth's DER
    LossTerms terms = std::move(current.terms);
    const auto zero = torch::zeros({}, current.labeled_logits.options());
    const auto draw = replay_draw(rng);
    terms.emplace_back(
        "der_mse",
        draw.size() ? alpha_ * draw.weight * der_logit_loss(model()->forward(draw.images), draw.logits) : zero);
    const auto second = beta_ ? replay_draw(rng) : ReplayBatch{};  // DER++'s own draw
    if (beta_) terms.emplace_back("der_ce", second.size() ? *beta_ * replay_cross_entropy(second) : zero);
    offer(batch, rng, current.labeled_logits);  // the stored targets: raw logits over every class
    return terms;
  }

 private:
  double alpha_;
  std::optional<double> beta_;  // DER++
};

SSCL_REGISTER_METHOD("der", Der, DerOptions{}, "DER: reservoir replay matching the logits stored with each image");
SSCL_REGISTER_METHOD("derpp", Der, DerppOptions{}, "DER++: DER plus cross-entropy on a second replay draw");

}  // namespace
}  // namespace sscl
