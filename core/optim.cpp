#include "core/optim.h"

#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace sscl {

SSCL_DEFINE_REGISTRY(OptimizerRegistry, "optimizer", "optimizer")
SSCL_DEFINE_REGISTRY(LrScheduleRegistry, "learning-rate schedule", "lr_schedule")

void OptimizerSelection::declare(OptionSpec<OptimizerSelection>& o) {
  o.key("type", &OptimizerSelection::type, "the optimizer (an OptimizerRegistry entry)");
}

Optimizer build_optimizer(const ConfigSection& section) {
  const auto selection = read_options<OptimizerSelection>(section);
  Optimizer optimizer = OptimizerRegistry::get().at(selection.type)(section);
  // A table of free keys, read here for every optimizer type.
  for (const auto& key : section.child_keys("lr_mult")) {
    const double mult = section.get<double>("lr_mult." + key);
    if (!(mult >= 0) || !std::isfinite(mult)) section.fail("lr_mult." + key, "must be a finite number >= 0");
    optimizer.lr_mult.emplace_back(key, mult);
  }
  return optimizer;
}

double lr_mult_of(const std::string& name, const LrMults& lr_mult) {
  const std::pair<std::string, double>* best = nullptr;
  for (const auto& entry : lr_mult)
    if (name.find(entry.first) != std::string::npos && (!best || entry.first.size() > best->first.size()))
      best = &entry;
  return best ? best->second : 1.0;
}

std::vector<ParamGroup> param_groups(const std::vector<torch::Tensor>& params,
                                     const std::vector<std::pair<std::string, torch::Tensor>>& named,
                                     const LrMults& lr_mult) {
  std::map<const void*, double> mult_of;
  for (const auto& [name, tensor] : named) mult_of[tensor.unsafeGetTensorImpl()] = lr_mult_of(name, lr_mult);
  std::vector<ParamGroup> groups{ParamGroup{}};
  for (const auto& p : params) {
    const auto it = mult_of.find(p.unsafeGetTensorImpl());
    const double mult = it == mult_of.end() ? 1.0 : it->second;
    auto group = std::find_if(groups.begin(), groups.end(), [mult](const ParamGroup& g) { return g.lr_mult == mult; });
    if (group == groups.end()) group = groups.insert(groups.end(), ParamGroup{{}, mult});
    group->params.push_back(p);
  }
  if (groups.size() > 1 && groups.front().params.empty()) groups.erase(groups.begin());
  return groups;
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr, const std::vector<double>& lr_mults) {
  auto& groups = optimizer.param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(lr * (i < lr_mults.size() ? lr_mults[i] : 1.0));
}

void LrWarmupOptions::declare(OptionSpec<LrWarmupOptions>& o) {
  o.key("warmup_iters", &LrWarmupOptions::warmup_iters, "linear warm-up iterations at the start of every task").min(0);
  o.key("warmup_ratio", &LrWarmupOptions::warmup_ratio, "the warm-up starts at warmup_ratio * lr")
      .check([](double r) { return r > 0 && r <= 1; }, "must be in (0, 1]");
}

void LrScheduleSelection::declare(OptionSpec<LrScheduleSelection>& o) {
  o.key("policy", &LrScheduleSelection::policy, "the schedule (an LrScheduleRegistry entry)");
  o.include(&LrScheduleSelection::warmup);
}

LrSchedule::LrSchedule(std::shared_ptr<const LrPolicy> policy, LrWarmupOptions warmup, double base_lr)
    : policy_(std::move(policy)), warmup_(warmup), base_lr_(base_lr) {}

double LrSchedule::lr_at(int64_t iter, int64_t iters_per_task) const {
  double lr = policy_->lr_at(iter, iters_per_task, base_lr_);
  if (iter < warmup_.warmup_iters) {
    const double t = static_cast<double>(iter) / warmup_.warmup_iters;
    lr *= warmup_.warmup_ratio + (1.0 - warmup_.warmup_ratio) * t;
  }
  return lr;
}

LrSchedule build_lr_schedule(const ConfigSection& section, double base_lr) {
  const auto selection = read_options<LrScheduleSelection>(section);
  return LrSchedule(LrScheduleRegistry::get().at(selection.policy)(section), selection.warmup, base_lr);
}

namespace {

struct SgdOptions {
  double lr = 0.03;
  double weight_decay = 5e-4;
  double momentum = 0.9;
  bool nesterov = false;
  static void declare(OptionSpec<SgdOptions>& o) {
    o.key("lr", &SgdOptions::lr, "base learning rate").above(0);
    o.key("weight_decay", &SgdOptions::weight_decay, "L2 penalty (torch's weight_decay)").min(0);
    o.key("momentum", &SgdOptions::momentum, "heavy-ball momentum").min(0);
    o.key("nesterov", &SgdOptions::nesterov, "Nesterov momentum (needs momentum > 0)");
    o.rule([](const SgdOptions& v, const ConfigSection& s) {
      if (v.nesterov && v.momentum <= 0) s.fail("nesterov", "needs momentum > 0");
    });
  }
};

struct AdamOptions {
  double lr = 0.03;
  double weight_decay = 5e-4;
  std::vector<double> betas = {0.9, 0.999};
  double eps = 1e-8;
  static void declare(OptionSpec<AdamOptions>& o) {
    o.key("lr", &AdamOptions::lr, "base learning rate").above(0);
    o.key("weight_decay", &AdamOptions::weight_decay, "L2 penalty (torch's weight_decay)").min(0);
    o.key("betas", &AdamOptions::betas, "running-average coefficients")
        .check(
            [](const std::vector<double>& b) {
              return b.size() == 2 && b[0] >= 0 && b[0] < 1 && b[1] >= 0 && b[1] < 1;
            },
            "must be two numbers in [0, 1)");
    o.key("eps", &AdamOptions::eps, "added to the denominator").above(0);
  }
};

// torch's groups, each with the defaults at its own learning rate.
template <typename Options>
std::vector<torch::optim::OptimizerParamGroup> torch_groups(std::vector<ParamGroup> groups, const Options& defaults) {
  std::vector<torch::optim::OptimizerParamGroup> out;
  for (auto& g : groups) {
    auto options = std::make_unique<Options>(defaults);
    options->lr(defaults.lr() * g.lr_mult);
    out.emplace_back(std::move(g.params), std::move(options));
  }
  return out;
}

SSCL_REGISTER_OPTIONS(
    OptimizerRegistry, "sgd", "SGD with momentum, Nesterov and weight decay (torch::optim::SGD)", SgdOptions{},
    [](const SgdOptions& o) {
      return Optimizer{
          o.lr,
          [o](std::vector<ParamGroup> groups) {
            const auto defaults =
                torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov).weight_decay(o.weight_decay);
            return std::unique_ptr<torch::optim::Optimizer>(
                std::make_unique<torch::optim::SGD>(torch_groups(std::move(groups), defaults), defaults));
          },
          {}};
    });

SSCL_REGISTER_OPTIONS(OptimizerRegistry, "adam", "Adam (torch::optim::Adam)", AdamOptions{}, [](const AdamOptions& o) {
  return Optimizer{
      o.lr,
      [o](std::vector<ParamGroup> groups) {
        const auto defaults =
            torch::optim::AdamOptions(o.lr).betas({o.betas[0], o.betas[1]}).eps(o.eps).weight_decay(o.weight_decay);
        return std::unique_ptr<torch::optim::Optimizer>(
            std::make_unique<torch::optim::Adam>(torch_groups(std::move(groups), defaults), defaults));
      },
      {}};
});

struct ConstantLr : LrPolicy {
  double lr_at(int64_t, int64_t, double base_lr) const override { return base_lr; }
};

struct StepLr : LrPolicy {
  struct Options {
    std::vector<int64_t> milestones;
    double gamma = 0.1;
    static void declare(OptionSpec<Options>& o) {
      o.key("milestones", &Options::milestones, "iterations (inside a task) where lr *= gamma")
          .required()
          .check([](const std::vector<int64_t>& m) { return std::is_sorted(m.begin(), m.end()); }, "must be ascending");
      o.key("gamma", &Options::gamma, "the factor at each milestone").above(0);
    }
  };
  explicit StepLr(Options o) : options(std::move(o)) {}
  double lr_at(int64_t iter, int64_t, double base_lr) const override {
    double lr = base_lr;
    for (int64_t m : options.milestones)
      if (iter >= m) lr *= options.gamma;
    return lr;
  }
  Options options;
};

struct CosineLr : LrPolicy {
  struct Options {
    double min_lr = 0.0;
    static void declare(OptionSpec<Options>& o) {
      o.key("min_lr", &Options::min_lr, "the floor reached at the task's last iteration").min(0);
    }
  };
  explicit CosineLr(Options o) : options(o) {}
  double lr_at(int64_t iter, int64_t iters_per_task, double base_lr) const override {
    const double progress = iters_per_task > 1 ? static_cast<double>(iter) / (iters_per_task - 1) : 1.0;
    return options.min_lr + (base_lr - options.min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  Options options;
};

SSCL_REGISTER_OPTIONS(LrScheduleRegistry, "constant", "the base learning rate throughout", NoOptions{},
                      [](const NoOptions&) { return std::make_shared<const ConstantLr>(); });
SSCL_REGISTER_OPTIONS(LrScheduleRegistry, "step", "lr *= gamma at each milestone of every task", StepLr::Options{},
                      [](const StepLr::Options& o) { return std::make_shared<const StepLr>(o); });
SSCL_REGISTER_OPTIONS(LrScheduleRegistry, "cosine", "cosine from lr to min_lr over every task", CosineLr::Options{},
                      [](const CosineLr::Options& o) { return std::make_shared<const CosineLr>(o); });

}  // namespace
}  // namespace sscl
