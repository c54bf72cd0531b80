#include "methods/semi/mixmatch.h"

#include <torch/torch.h>

#include <numeric>

#include "core/method.h"
#include "core/random.h"
#include "methods/continual/sft.h"
#include "methods/semi/semi_math.h"
#include "methods/semi/weak_strong_loss.h"

namespace sscl {

void MixMatchOptions::declare(OptionSpec<MixMatchOptions>& o) {
  o.key("k_aug", &MixMatchOptions::k_aug, "K weak augmentations per unlabeled image for the label guess").min(1);
  o.key("temperature", &MixMatchOptions::temperature, "T of the guess's sharpening").above(0);
  o.key("mixup_alpha", &MixMatchOptions::mixup_alpha, "alpha of MixUp's Beta(alpha, alpha)").above(0);
  o.key("lambda_u", &MixMatchOptions::lambda_u, "weight of the unlabeled term").min(0);
  o.key("unsup_warm_up", &MixMatchOptions::unsup_warm_up,
        "fraction of each task over which the unlabeled weight ramps linearly to lambda_u")
      .between(0, 1);
  o.key("concat_forward", &MixMatchOptions::concat_forward,
        "one pass over [mixed, extra] (and one over [labeled, K views] for the guess); false: one pass each");
}

at::Tensor guess_labels(const std::vector<at::Tensor>& view_logits, double temperature) {
  at::Tensor sum;
  for (const auto& logits : view_logits) {
    const auto probs = torch::softmax(logits.detach(), 1);
    sum = sum.defined() ? sum + probs : probs;
  }
  return sharpen(sum / static_cast<double>(view_logits.size()), temperature);
}

MixedBatch mixmatch_mixup(const at::Tensor& inputs, const at::Tensor& targets, const at::Tensor& permutation,
                          double lambda) {
  return {mix(inputs, inputs.index_select(0, permutation), lambda),
          mix(targets, targets.index_select(0, permutation), lambda)};
}

MixMatchLosses mixmatch_losses(const at::Tensor& logits, const at::Tensor& targets, int64_t num_labeled,
                               int64_t num_classes) {
  MixMatchLosses out;
  const int64_t rows = logits.size(0);
  out.labeled = soft_cross_entropy(logits.narrow(0, 0, num_labeled), targets.narrow(0, 0, num_labeled)).mean();
  if (rows == num_labeled) {
    out.unlabeled = torch::zeros({}, logits.options());
  } else {
    const int64_t u = rows - num_labeled;
    out.unlabeled =
        softmax_mse(logits.narrow(0, num_labeled, u), targets.narrow(0, num_labeled, u), num_classes).mean();
  }
  return out;
}

namespace {

// Copies of the model's buffers (BN running statistics), put back after the
// label-guessing pass so that only the training pass updates them (USB freezes
// BN there too).
class BufferSnapshot {
 public:
  explicit BufferSnapshot(torch::nn::Module& module) : buffers_(module.buffers()) {
    for (const auto& b : buffers_) saved_.push_back(b.clone());
  }
  void restore() {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < buffers_.size(); ++i) buffers_[i].copy_(saved_[i]);
  }

 private:
  std::vector<at::Tensor> buffers_, saved_;
};

class MixMatchLoss : public SemiLoss {
 public:
  explicit MixMatchLoss(MixMatchOptions options) : options_(options) {}
  std::string name() const override { return "mixmatch"; }
  bool keeps_supervised_loss() const override { return false; }
  // The mixup pairs rows of the whole global batch (gathered); each rank trains
  // the mixed rows of its own images, equal slices of both terms' means.
  bool distributed() const override { return true; }

  CurrentBatchOutput forward(const TrainBatch& batch, const at::Tensor& extra, const SupervisedLoss&,
                             const RunState& state) override {
    Method& m = method();
    auto& model = m.model();
    const auto& lab = batch.labeled;
    const auto& unl = batch.unlabeled;
    const int task = batch.task;
    const int64_t b = lab.images.size(0);
    const int64_t e = extra.defined() ? extra.size(0) : 0;
    const int64_t u = unl.empty() ? 0 : unl.weak.size(0);
    const uint64_t seed = m.context().seed;

    World& world = m.world();

    // K weak views of each unlabeled image: the batch's own, then K - 1 more,
    // each image's as in the global batch (the slices are equal: data.batch_size
    // splits evenly, and uratio scales it).
    std::vector<at::Tensor> views;
    if (u > 0) {
      views.push_back(unl.weak);
      if (options_.k_aug > 1) {
        const auto raw = m.data().raw_images(unl.indices.cpu());
        for (int64_t k = 1; k < options_.k_aug; ++k) {
          const uint64_t view_seed = stream_seed(seed, "mixmatch.view", task, state.iter, k);
          views.push_back(m.data().views(raw, View::kWeak, view_seed, u * world.rank()).to(unl.weak.device()));
        }
      }
    }

    // Label guessing, without gradient; the labeled images go through the same
    // pass, which gives the labeled logits a method stores or distils from.
    CurrentBatchOutput out;
    at::Tensor guess;
    {
      torch::NoGradGuard no_grad;
      BufferSnapshot snapshot(*model);
      std::vector<at::Tensor> view_logits;
      if (options_.concat_forward) {
        std::vector<at::Tensor> parts{lab.images};
        parts.insert(parts.end(), views.begin(), views.end());
        view_logits = forward_concat(model, parts);
        out.labeled_logits = view_logits.front();
        view_logits.erase(view_logits.begin());
      } else {
        out.labeled_logits = model->forward(lab.images);
        for (const auto& v : views) view_logits.push_back(model->forward(v));
      }
      snapshot.restore();
      for (auto& logits : view_logits) logits = m.train_logits(logits, task);
      if (u > 0) {
        guess = guess_labels(view_logits, options_.temperature);
        guess_confidence_.add(std::get<0>(guess.max(1)), world);
      }
    }

    // MixUp over X = labeled (one-hot) and U = the K views (each with the
    // guess), the global batch's: distributed, every rank gathers the parts, so
    // a row's partner may be another rank's image.
    const auto global = [&](const at::Tensor& part) { return world.distributed() ? m.gather_rows(part) : part; };
    std::vector<at::Tensor> inputs{global(lab.images)},
        targets{global(one_hot_float(lab.labels, model->num_classes()))};
    const auto all_guesses = u > 0 ? global(guess) : guess;
    for (const auto& v : views) {
      inputs.push_back(global(v));
      targets.push_back(all_guesses);
    }
    const auto all_inputs = torch::cat(inputs);
    const auto all_targets = torch::cat(targets).to(all_inputs.scalar_type());
    const int64_t n = all_inputs.size(0);
    Rng rng(stream_seed(seed, "mixmatch.mix", task, state.iter));  // coefficient and permutation
    const double lambda = mixmatch_lambda(options_.mixup_alpha, rng);
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
    rng.shuffle(order);
    const auto permutation = torch::tensor(order, torch::kLong).to(all_inputs.device());
    MixedBatch mixed;
    if (!world.distributed()) {
      mixed = mixmatch_mixup(all_inputs, all_targets, permutation, lambda);
    } else {
      // This rank trains the mixed rows of its own images: its labeled slice,
      // then its slice of each view, in the one-process order of the rows.
      const int64_t ranks = world.size(), r = world.rank();
      std::vector<at::Tensor> mine{torch::arange(r * b, (r + 1) * b, torch::kLong)};
      for (int64_t k = 0; k < static_cast<int64_t>(views.size()); ++k) {
        const int64_t first = b * ranks + k * u * ranks + r * u;
        mine.push_back(torch::arange(first, first + u, torch::kLong));
      }
      const auto rows = torch::cat(mine).to(all_inputs.device());
      const auto partners = permutation.index_select(0, rows);
      mixed = {mix(all_inputs.index_select(0, rows), all_inputs.index_select(0, partners), lambda),
               mix(all_targets.index_select(0, rows), all_targets.index_select(0, partners), lambda)};
    }

    // The training pass: mixed rows, then the method's extra images unmixed. One
    // pass serves BatchNorm for every row, so the original code's interleaving
    // of labeled and unlabeled rows across passes is not needed.
    at::Tensor mixed_logits;
    if (e > 0 && options_.concat_forward) {
      const auto logits = forward_concat(model, {mixed.inputs, extra});
      mixed_logits = logits[0];
      out.extra_logits = logits[1];
    } else {
      mixed_logits = model->forward(mixed.inputs);
      out.extra_logits = e > 0 ? model->forward(extra) : mixed_logits.narrow(0, 0, 0);
    }

    const auto losses = mixmatch_losses(m.train_logits(mixed_logits, task), mixed.targets, b, classes_in_play(m, task));
    const double weight = options_.lambda_u * unsup_warmup(state.iter, state.iters_per_task, options_.unsup_warm_up);
    out.terms = {{"sup", losses.labeled}, {"unsup", weight * losses.unlabeled}};
    return out;
  }

  std::vector<std::pair<std::string, double>> stats() const override {
    return {{"guess_confidence", guess_confidence_.mean()}};
  }

  void visit_state(StateVisitor& s) override { s("guess_confidence", guess_confidence_); }

 private:
  MixMatchOptions options_;
  RunningMean guess_confidence_;  // the sharpened guesses' top probability, over every rank's
};

SSCL_REGISTER_SEMI_LOSS("mixmatch", MixMatchLoss, MixMatchOptions{},
                        "MixMatch: sharpened guesses over K weak views, then MixUp of labeled and unlabeled images");

}  // namespace
}  // namespace sscl
