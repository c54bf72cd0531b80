#include "methods/continual/ewc.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/logging.h"
#include "methods/continual/regularization.h"

namespace sscl {

namespace {
constexpr int64_t kFisherChunk = 256;  // images decoded at a time
}  // namespace

std::vector<at::Tensor> fisher_sum(const LogitsFn& logits_of, const std::vector<at::Tensor>& params,
                                   const at::Tensor& images, const at::Tensor& labels, FisherEstimator estimator,
                                   Rng& rng) {
  std::vector<at::Tensor> sums;
  std::vector<at::Tensor> trainable;  // autograd::grad rejects tensors without gradients
  std::vector<size_t> trainable_index;
  for (size_t k = 0; k < params.size(); ++k) {
    sums.push_back(torch::zeros_like(params[k].detach()));
    if (params[k].requires_grad()) {
      trainable.push_back(params[k]);
      trainable_index.push_back(k);
    }
  }
  if (trainable.empty()) return sums;
  torch::AutoGradMode grad_mode(true);
  const auto host_labels = labels.defined() ? labels.to(torch::kCPU, torch::kLong).contiguous() : at::Tensor();
  for (int64_t i = 0; i < images.size(0); ++i) {
    const auto logits = logits_of(images.narrow(0, i, 1));
    check<Error>(logits.dim() == 2 && logits.size(0) == 1, "fisher_sum: expected logits [1, C] for one image");
    const auto log_probs = torch::log_softmax(logits, 1).select(0, 0);
    const auto probs = log_probs.detach().exp().to(torch::kCPU, torch::kDouble).contiguous();
    const double* p = probs.data_ptr<double>();
    const int64_t num_classes = probs.numel();

    std::vector<std::pair<int64_t, double>> targets;  // (class, weight)
    switch (estimator) {
      case FisherEstimator::kEmpirical: {
        check<Error>(host_labels.defined() && i < host_labels.numel(), "fisher_sum: the empirical Fisher needs labels");
        const int64_t y = host_labels[i].item<int64_t>();
        check<Error>(y >= 0 && y < num_classes && p[y] > 0,
                     "fisher_sum: label " + std::to_string(y) + " is outside the classes the logits allow");
        targets.emplace_back(y, 1.0);
        break;
      }
      case FisherEstimator::kSampled: {
        const double u = rng.uniform();
        double cumulative = 0;
        int64_t y = -1;
        for (int64_t c = 0; c < num_classes; ++c) {
          if (p[c] <= 0) continue;
          y = c;  // the last allowed class absorbs rounding when u is near 1
          cumulative += p[c];
          if (u < cumulative) break;
        }
        check<Error>(y >= 0, "fisher_sum: the prediction has no class with a positive probability");
        targets.emplace_back(y, 1.0);
        break;
      }
      case FisherEstimator::kExpected:
        for (int64_t c = 0; c < num_classes; ++c)
          if (p[c] > 0) targets.emplace_back(c, p[c]);
        break;
    }
    for (size_t j = 0; j < targets.size(); ++j) {
      const auto grads = torch::autograd::grad({log_probs[targets[j].first]}, trainable, /*grad_outputs=*/{},
                                               /*retain_graph=*/j + 1 < targets.size(), /*create_graph=*/false,
                                               /*allow_unused=*/true);
      for (size_t t = 0; t < grads.size(); ++t)
        if (grads[t].defined()) sums[trainable_index[t]].add_(grads[t].pow(2), targets[j].second);
    }
  }
  return sums;
}

std::vector<at::Tensor> diagonal_fisher(const LogitsFn& logits_of, const std::vector<at::Tensor>& params,
                                        const at::Tensor& images, const at::Tensor& labels, FisherEstimator estimator,
                                        Rng& rng) {
  auto sums = fisher_sum(logits_of, params, images, labels, estimator, rng);
  if (images.size(0) > 0)
    for (auto& s : sums) s.div_(static_cast<double>(images.size(0)));
  return sums;
}

at::Tensor online_fisher_update(const at::Tensor& previous, const at::Tensor& task_fisher, double gamma) {
  if (!previous.defined()) return task_fisher.clone();
  return gamma * previous + task_fisher;
}

std::vector<torch::Tensor> OnlineEwc::params() const { return context().model->parameters(); }

LossTerms OnlineEwc::step(const TrainBatch& batch, const RunState& state) {
  LossTerms terms = forward_current(batch, state).terms;
  terms.emplace_back("penalty", quadratic_penalty(params(), anchor_, fisher_, options_.lambda));
  return terms;
}

std::pair<std::vector<torch::Tensor>, int64_t> OnlineEwc::task_fisher(int task) {
  const auto set = data().labeled_set(task);
  auto ids = set.ids.to(torch::kCPU, torch::kLong);
  auto labels = set.labels.to(torch::kCPU, torch::kLong);
  const int64_t available = ids.numel();
  if (options_.fisher_samples > 0 && available > options_.fisher_samples) {
    Rng rng = this->rng("oewc.fisher_subset", task);  // which labeled images enter the Fisher
    std::vector<int64_t> rows(static_cast<size_t>(available));
    std::iota(rows.begin(), rows.end(), int64_t{0});
    rows = rng.sample(std::move(rows), static_cast<size_t>(options_.fisher_samples));
    std::sort(rows.begin(), rows.end());
    const auto chosen = torch::tensor(rows, torch::kLong);
    ids = ids.index_select(0, chosen);
    labels = labels.index_select(0, chosen);
  }
  const auto theta = params();
  std::vector<torch::Tensor> fisher;
  for (const auto& p : theta) fisher.push_back(torch::zeros_like(p.detach()));
  const int64_t n = ids.numel();
  if (n == 0) return {fisher, 0};

  const bool was_training = model()->is_training();
  model()->eval();
  Rng label_rng = rng("oewc.fisher_label", task);  // the sampled estimator's y ~ p(y|x)
  const LogitsFn logits_of = [&](const at::Tensor& image) { return train_logits(model()->forward(image), task); };
  // A distributed run's ranks take contiguous shares of the images; the sampled
  // estimator's stream skips the draws (one per image) of the shares before.
  const auto [first, last] = world().shard(n);
  if (options_.fisher == FisherEstimator::kSampled)
    for (int64_t i = 0; i < first; ++i) label_rng.uniform();
  for (int64_t start = first; start < last; start += kFisherChunk) {
    const int64_t len = std::min(kFisherChunk, last - start);
    const auto images =
        data().views(data().raw_images(ids.narrow(0, start, len)), View::kPlain, 0).to(context().device);
    const auto part = fisher_sum(logits_of, theta, images, labels.narrow(0, start, len), options_.fisher, label_rng);
    for (size_t k = 0; k < fisher.size(); ++k) fisher[k].add_(part[k]);
  }
  world().all_reduce_sum(fisher);
  model()->train(was_training);
  for (auto& f : fisher) f.div_(static_cast<double>(n));
  get_logger("method")->info("oewc: task {} Fisher from {} of {} labeled images (method.fisher_samples = {})", task, n,
                             available, options_.fisher_samples);
  return {fisher, n};
}

void OnlineEwc::after_task(const RunState& state) {
  auto [task_f, images] = task_fisher(state.task);
  torch::NoGradGuard no_grad;
  if (fisher_.empty()) {
    fisher_ = std::move(task_f);
  } else {
    for (size_t k = 0; k < fisher_.size(); ++k)
      fisher_[k] = online_fisher_update(fisher_[k], task_f[k], options_.gamma);
  }
  anchor_ = detached_copies(params());
  last_fisher_images_ = images;
}

std::vector<std::pair<std::string, double>> OnlineEwc::stats() const {
  return {{"importance_bytes", total_bytes(fisher_)},
          {"anchor_bytes", total_bytes(anchor_)},
          {"fisher_samples", static_cast<double>(last_fisher_images_)}};
}

SSCL_REGISTER_METHOD("oewc", OnlineEwc, OnlineEwcOptions{},
                     "Online EWC: a running diagonal Fisher penalises drift from the last task's parameters");

}  // namespace sscl
