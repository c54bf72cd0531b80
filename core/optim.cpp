#include "core/optim.h"

#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <cmath>

namespace sscl {

OptimizerOptions OptimizerOptions::from_config(const ConfigSection& s) {
  OptimizerOptions o;
  o.type = s.get_choice("type", o.type, {"sgd", "adam"});
  o.lr = s.get_or("lr", o.lr);
  o.weight_decay = s.get_or("weight_decay", o.weight_decay);
  if (!(o.lr > 0)) s.fail("lr", "must be > 0");
  if (o.weight_decay < 0) s.fail("weight_decay", "must be >= 0");
  if (o.type == "sgd") {
    o.momentum = s.get_or("momentum", o.momentum);
    o.nesterov = s.get_or("nesterov", o.nesterov);
    if (o.momentum < 0) s.fail("momentum", "must be >= 0");
    if (o.nesterov && o.momentum <= 0) s.fail("nesterov", "needs momentum > 0");
  } else {
    o.betas = s.get_or("betas", o.betas);
    o.eps = s.get_or("eps", o.eps);
    if (o.betas.size() != 2 || o.betas[0] < 0 || o.betas[0] >= 1 || o.betas[1] < 0 || o.betas[1] >= 1)
      s.fail("betas", "must be two numbers in [0, 1)");
    if (!(o.eps > 0)) s.fail("eps", "must be > 0");
  }
  return o;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerOptions& o,
                                                        std::vector<torch::Tensor> parameters) {
  if (o.type == "adam") {
    return std::make_unique<torch::optim::Adam>(
        std::move(parameters),
        torch::optim::AdamOptions(o.lr).betas({o.betas[0], o.betas[1]}).eps(o.eps).weight_decay(o.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(
      std::move(parameters),
      torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov).weight_decay(o.weight_decay));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

LrScheduleOptions LrScheduleOptions::from_config(const ConfigSection& s) {
  LrScheduleOptions o;
  o.policy = s.get_choice("policy", o.policy, {"constant", "step", "cosine"});
  if (o.policy == "step") {
    o.milestones = s.get<std::vector<int64_t>>("milestones");
    o.gamma = s.get_or("gamma", o.gamma);
    if (!std::is_sorted(o.milestones.begin(), o.milestones.end())) s.fail("milestones", "must be ascending");
    if (!(o.gamma > 0)) s.fail("gamma", "must be > 0");
  } else if (o.policy == "cosine") {
    o.min_lr = s.get_or("min_lr", o.min_lr);
    if (o.min_lr < 0) s.fail("min_lr", "must be >= 0");
  }
  o.warmup_iters = s.get_or("warmup_iters", o.warmup_iters);
  if (o.warmup_iters < 0) s.fail("warmup_iters", "must be >= 0");
  if (o.warmup_iters > 0) {
    o.warmup_ratio = s.get_or("warmup_ratio", o.warmup_ratio);
    if (!(o.warmup_ratio > 0 && o.warmup_ratio <= 1)) s.fail("warmup_ratio", "must be in (0, 1]");
  }
  return o;
}

LrSchedule::LrSchedule(LrScheduleOptions options, double base_lr) : options_(std::move(options)), base_lr_(base_lr) {}

double LrSchedule::lr_at(int64_t iter, int64_t iters_per_task) const {
  double lr = base_lr_;
  if (options_.policy == "step") {
    for (int64_t m : options_.milestones)
      if (iter >= m) lr *= options_.gamma;
  } else if (options_.policy == "cosine") {
    const double progress = iters_per_task > 1 ? static_cast<double>(iter) / (iters_per_task - 1) : 1.0;
    lr = options_.min_lr + (base_lr_ - options_.min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  if (iter < options_.warmup_iters) {
    const double t = static_cast<double>(iter) / options_.warmup_iters;
    lr *= options_.warmup_ratio + (1.0 - options_.warmup_ratio) * t;
  }
  return lr;
}

}  // namespace sscl
