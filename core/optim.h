// Optimizers and learning-rate schedules, each a registry entry with its own
// options: optimizer.type names an OptimizerRegistry entry ("sgd", "adam") whose
// keys sit beside it in [optimizer]; lr_schedule.policy names an
// LrScheduleRegistry entry ("constant", "step", "cosine") whose keys sit in
// [lr_schedule], with the linear warm-up every policy shares. Schedules restart
// at every task, as in the reference: `iter` is the iteration inside the task.
#pragma once

#include <torch/optim/optimizer.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/registry.h"

namespace sscl {

// Parameters that train at lr_mult times the schedule's learning rate.
struct ParamGroup {
  std::vector<torch::Tensor> params;
  double lr_mult = 1.0;
};

// An optimizer over parameter groups; the trainer builds one per run, and again
// each task for methods that ask for it (MethodTraits::fresh_optimizer_each_task).
using OptimizerMaker = std::function<std::unique_ptr<torch::optim::Optimizer>(std::vector<ParamGroup>)>;

// optimizer.lr_mult.<key> = m (mmengine's paramwise custom_keys): a parameter
// whose dotted name in the model contains <key> trains at m * lr; the longest
// key that fits wins (mmengine's order), and the rest train at lr. A TOML key
// holds no '.': "layer1" matches backbone.layer1.*.
using LrMults = std::vector<std::pair<std::string, double>>;

struct Optimizer {
  double lr = 0.0;  // the base learning rate the schedule starts from
  OptimizerMaker make;
  LrMults lr_mult;  // sorted by key
};

// `params` split by `lr_mult`, each parameter named by its entry in `named`
// (parameters not there, such as a method's own modules, train at lr): one
// group per multiplier in use, the plain one first, in the parameters' order.
std::vector<ParamGroup> param_groups(const std::vector<torch::Tensor>& params,
                                     const std::vector<std::pair<std::string, torch::Tensor>>& named,
                                     const LrMults& lr_mult);
// The multiplier of a parameter name (1 when no key fits).
double lr_mult_of(const std::string& name, const LrMults& lr_mult);

// Factory: the [optimizer] section.
SSCL_DECLARE_REGISTRY(OptimizerRegistry, std::function<Optimizer(const ConfigSection&)>);

// optimizer.type, and the entry it names.
struct OptimizerSelection {
  std::string type = "sgd";
  static void declare(OptionSpec<OptimizerSelection>& o);
};
Optimizer build_optimizer(const ConfigSection& section);

// Every group at lr times its multiplier (one per group, in order; none: 1).
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr, const std::vector<double>& lr_mults = {});

// A policy: the learning rate at `iter` of a task of `iters_per_task`
// iterations, before the warm-up.
class LrPolicy {
 public:
  virtual ~LrPolicy() = default;
  virtual double lr_at(int64_t iter, int64_t iters_per_task, double base_lr) const = 0;
};

// Factory: the [lr_schedule] section.
SSCL_DECLARE_REGISTRY(LrScheduleRegistry, std::function<std::shared_ptr<const LrPolicy>(const ConfigSection&)>);

struct LrWarmupOptions {
  int64_t warmup_iters = 0;   // linear warm-up over the first iterations of every task
  double warmup_ratio = 0.1;  // from warmup_ratio * lr to lr
  static void declare(OptionSpec<LrWarmupOptions>& o);
};

// lr_schedule.policy, the entry it names and the warm-up: what the trainer asks.
class LrSchedule {
 public:
  LrSchedule(std::shared_ptr<const LrPolicy> policy, LrWarmupOptions warmup, double base_lr);
  double lr_at(int64_t iter, int64_t iters_per_task) const;

 private:
  std::shared_ptr<const LrPolicy> policy_;
  LrWarmupOptions warmup_;
  double base_lr_;
};

struct LrScheduleSelection {
  std::string policy = "constant";
  LrWarmupOptions warmup;
  static void declare(OptionSpec<LrScheduleSelection>& o);
};
LrSchedule build_lr_schedule(const ConfigSection& section, double base_lr);

}  // namespace sscl
