// Online EWC (Schwarz et al., ICML 2018, "Progress & Compress", Eq. 8-9): one
// running diagonal Fisher instead of one per task. At the end of each task
//   F <- gamma * F + F_task,   theta* <- theta,
// and the next tasks pay lambda * sum_k F_k * (theta_k - theta*_k)^2 (no 1/2, as the
// reference).
//
// F_task is the mean over the task's labeled images (plain view) of squared
// PER-IMAGE gradients of log p(y|x): the square of a batch-mean gradient is not the
// Fisher. The model is in eval mode for it: BatchNorm then uses its running
// statistics, so each image's gradient is its own (in train mode BN would normalise
// a batch of one by itself, a function the model never computes at test time) and
// the Fisher pass does not move the running statistics. Logits are masked as in
// training (train_logits), so in task-IL the prediction is over the task's classes.
//
// Which y (method.fisher):
//   "sampled"   (default) y ~ p(y|x): a Monte-Carlo estimate of the true Fisher
//               E_{y~p}[(d log p(y|x))^2] (the curvature EWC's Laplace argument
//               needs) at one backward pass per image, the cost of the empirical one.
//   "expected"  the exact sum over classes, weighted by p(y|x): one backward pass per
//               class the mask leaves (10-200 in class-IL), for small models.
//   "empirical" y = the true label: the squared gradients of the training loss, a
//               biased stand-in that equals the Fisher only where the model's
//               predictive matches the labels (Kunstner et al., NeurIPS 2019). The
//               reference (mammoth's ewc_on) weights it by p(y_true|x), which is none
//               of the three.
// Only the parameters count (not BatchNorm's running statistics: no gradient).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/method.h"
#include "core/random.h"

namespace sscl {

enum class FisherEstimator { kSampled, kExpected, kEmpirical };

struct OnlineEwcOptions {
  double lambda = 10.0;
  double gamma = 1.0;
  // 1000 keeps a task end to ~1000 single-image backward passes (seconds for the
  // small CNN on a CPU) while the mean's relative noise is ~1/sqrt(1000) ~ 3%; the
  // semi-supervised settings (5-25 labels per class) stay far below it and use
  // every labeled image.
  int64_t fisher_samples = 1000;
  FisherEstimator fisher = FisherEstimator::kSampled;
  static void declare(OptionSpec<OnlineEwcOptions>& o) {
    o.key("lambda", &OnlineEwcOptions::lambda, "penalty strength (the reference's e_lambda)").min(0);
    o.key("gamma", &OnlineEwcOptions::gamma, "decay of the previous tasks' Fisher").between(0, 1);
    o.key("fisher_samples", &OnlineEwcOptions::fisher_samples,
          "labeled images per task for the Fisher (a seeded subset when more); 0: all")
        .min(0);
    o.choice("fisher", &OnlineEwcOptions::fisher,
             {{"sampled", FisherEstimator::kSampled},
              {"expected", FisherEstimator::kExpected},
              {"empirical", FisherEstimator::kEmpirical}},
             "which y the Fisher's gradients take: y ~ p(y|x), every y weighted by p, or the label");
  }
};

// Logits [1, C] of a batch of one image, already masked (-inf outside the classes
// the prediction is over).
using LogitsFn = std::function<at::Tensor(const at::Tensor&)>;

// Sum over the rows of `images` of each image's squared gradients of log p(y|x)
// w.r.t. `params` (summed over y with the estimator's weights), one tensor per
// parameter (zeros where a parameter gets no gradient). `labels` are read by the
// empirical estimator, `rng` by the sampled one. Does not touch params' .grad.
std::vector<at::Tensor> fisher_sum(const LogitsFn& logits_of, const std::vector<at::Tensor>& params,
                                   const at::Tensor& images, const at::Tensor& labels, FisherEstimator estimator,
                                   Rng& rng);

// The mean: fisher_sum / number of images.
std::vector<at::Tensor> diagonal_fisher(const LogitsFn& logits_of, const std::vector<at::Tensor>& params,
                                        const at::Tensor& images, const at::Tensor& labels, FisherEstimator estimator,
                                        Rng& rng);

// gamma * previous + task_fisher; task_fisher alone when `previous` is undefined.
at::Tensor online_fisher_update(const at::Tensor& previous, const at::Tensor& task_fisher, double gamma);

class OnlineEwc : public Method {
 public:
  explicit OnlineEwc(OnlineEwcOptions options) : options_(options) {
    traits_.composes_with_semi = true;
    traits_.distributed = true;  // each rank sums the Fisher of its share of the images; the sums are all-reduced
  }

  std::string name() const override { return "oewc"; }
  LossTerms step(const TrainBatch& batch, const RunState& state) override;
  void after_task(const RunState& state) override;

  std::vector<std::pair<std::string, double>> stats() const override;
  void visit_state(StateVisitor& s) override {
    s("fisher", fisher_, Place::kDevice);
    s("anchor", anchor_, Place::kDevice);
    s("last_fisher_images", last_fisher_images_);
  }

  // Per parameter, in model()->parameters() order; empty before task 0 ends.
  const std::vector<torch::Tensor>& fisher() const { return fisher_; }
  const std::vector<torch::Tensor>& anchor() const { return anchor_; }
  int64_t last_fisher_images() const { return last_fisher_images_; }

 private:
  std::vector<torch::Tensor> params() const;
  // F_task of `task` and the number of images it was computed on.
  std::pair<std::vector<torch::Tensor>, int64_t> task_fisher(int task);

  OnlineEwcOptions options_;
  std::vector<torch::Tensor> fisher_;
  std::vector<torch::Tensor> anchor_;
  int64_t last_fisher_images_ = 0;
};

}  // namespace sscl
