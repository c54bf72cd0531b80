// Mean Teacher (Tarvainen and Valpola, NeurIPS 2017): a teacher whose weights are
// an exponential moving average of the student's gives targets; the student is
// pulled towards them by the MSE between the two softmaxes.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/nn/classifier.h"
#include "core/options.h"
#include "core/semi_loss.h"

namespace sscl {

enum class RampUp { kLinear, kSigmoid };

struct MeanTeacherOptions {
  double ema_decay = 0.999;          // paper and USB (ema_m)
  double lambda_u = 50.0;            // USB's ulb_loss_ratio for Mean Teacher
  double unsup_warm_up = 0.4;        // USB's: the ramp spans 40% of the task
  RampUp ramp_up = RampUp::kLinear;  // USB's; "sigmoid" is the paper's exp(-5 (1 - t)^2)
  bool teacher_batch_stats = true;   // teacher_bn = "batch": BN in train mode, as the paper's code
  bool concat_forward = true;        // student pass over [labeled, extra, strong] in one go
  static void declare(OptionSpec<MeanTeacherOptions>& o);
};

// The weight's ramp at `iter` of a task of `iters_per_task` iterations, reaching
// 1 after fraction * iters_per_task: linear (USB) or exp(-5 (1 - t)^2) (the
// paper's sigmoid-shaped ramp-up). fraction = 0: 1 throughout.
double mean_teacher_ramp(RampUp ramp, int64_t iter, int64_t iters_per_task, double fraction);

// The paper's code's decay for the n-th update (n >= 1): min(1 - 1/(n + 1), decay),
// so that the early teacher is not dominated by its random initialisation.
double ema_decay_at(int64_t update, double decay);

// teacher <- a teacher + (1 - a) student, element-wise, in place (no gradient).
void ema_update(const std::vector<at::Tensor>& teacher, const std::vector<at::Tensor>& student, double decay);

// The loss: teacher on the weak view, student on the strong view; "unsup" =
// lambda_u * ramp * mean over U of softmax_mse(student, softmax(teacher)) (see
// methods/semi/semi_math.h; C = the classes in play, as USB's MSE is the mean over them).
class MeanTeacherLoss : public SemiLoss {
 public:
  explicit MeanTeacherLoss(MeanTeacherOptions options) : options_(options) {}
  std::string name() const override { return "mean_teacher"; }
  // The teacher follows parameters that are the same on every rank; its
  // buffers are the student's after each step.
  bool distributed() const override { return true; }

  void before_task(const RunState& state) override;
  void after_iter(const RunState& state) override;
  CurrentBatchOutput forward(const TrainBatch& batch, const at::Tensor& extra, const SupervisedLoss& supervised,
                             const RunState& state) override;

  std::vector<std::pair<std::string, double>> stats() const override;
  // The update count and the teacher (none before the first task).
  void visit_state(StateVisitor& s) override;

  // The teacher (null before the first task) and the number of EMA updates so far.
  const Classifier& teacher() const { return teacher_; }
  int64_t updates() const { return updates_; }

 private:
  void ensure_teacher();

  MeanTeacherOptions options_;
  Classifier teacher_{nullptr};
  std::vector<at::Tensor> teacher_params_, student_params_, teacher_buffers_, student_buffers_;
  int64_t updates_ = 0;
};

}  // namespace sscl
