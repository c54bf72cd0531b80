// Optimizers (SGD with momentum/nesterov/weight decay, Adam) and learning-rate
// schedules (constant, step, cosine; optional linear warm-up). Schedules restart at
// every task, as in the reference: `iter` is the iteration inside the task.
#pragma once

#include <torch/optim/optimizer.h>

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"

namespace sscl {

struct OptimizerOptions {
  std::string type = "sgd";  // sgd | adam
  double lr = 0.03;
  double weight_decay = 5e-4;
  // sgd
  double momentum = 0.9;
  bool nesterov = false;
  // adam
  std::vector<double> betas = {0.9, 0.999};
  double eps = 1e-8;

  // Reads `optimizer.*`; keys of the other optimizer type are left unread, so a
  // stray `optimizer.betas` with type = "sgd" is reported as unknown.
  static OptimizerOptions from_config(const ConfigSection& section);
};

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerOptions& options,
                                                        std::vector<torch::Tensor> parameters);
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

struct LrScheduleOptions {
  std::string policy = "constant";  // constant | step | cosine
  std::vector<int64_t> milestones;  // step: iterations (inside a task) where lr *= gamma
  double gamma = 0.1;
  double min_lr = 0.0;       // cosine: the floor reached at the task's last iteration
  int64_t warmup_iters = 0;  // linear warm-up from warmup_ratio * lr to lr
  double warmup_ratio = 0.1;

  static LrScheduleOptions from_config(const ConfigSection& section);
};

class LrSchedule {
 public:
  LrSchedule(LrScheduleOptions options, double base_lr);
  double lr_at(int64_t iter, int64_t iters_per_task) const;

 private:
  LrScheduleOptions options_;
  double base_lr_;
};

}  // namespace sscl
