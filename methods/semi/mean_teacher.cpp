#include "methods/semi/mean_teacher.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/method.h"
#include "methods/common/model_copy.h"
#include "methods/continual/sft.h"
#include "methods/semi/semi_math.h"
#include "methods/semi/weak_strong_loss.h"

namespace sscl {

void MeanTeacherOptions::declare(OptionSpec<MeanTeacherOptions>& o) {
  o.key("ema_decay", &MeanTeacherOptions::ema_decay, "the teacher's EMA decay (ema_m)")
      .min(0)
      .check([](const double& d) { return d < 1; }, "must be < 1");
  o.key("lambda_u", &MeanTeacherOptions::lambda_u, "weight of the consistency term (ulb_loss_ratio)").min(0);
  o.key("unsup_warm_up", &MeanTeacherOptions::unsup_warm_up,
        "fraction of each task over which the consistency weight ramps up to lambda_u")
      .between(0, 1);
  o.choice("ramp_up", &MeanTeacherOptions::ramp_up, {{"linear", RampUp::kLinear}, {"sigmoid", RampUp::kSigmoid}},
           "the weight's ramp: linear (USB) or the paper's exp(-5 (1 - t)^2)");
  o.choice("teacher_bn", &MeanTeacherOptions::teacher_batch_stats, {{"batch", true}, {"running", false}},
           "the teacher's BatchNorm on the weak views: the batch's statistics (the paper's code) or its running ones");
  o.key("concat_forward", &MeanTeacherOptions::concat_forward,
        "one student pass over [labeled, extra, strong]; false: one pass each");
}

double mean_teacher_ramp(RampUp ramp, int64_t iter, int64_t iters_per_task, double fraction) {
  const double t = unsup_warmup(iter, iters_per_task, fraction);
  if (ramp == RampUp::kLinear) return t;
  return std::exp(-5.0 * (1.0 - t) * (1.0 - t));
}

double ema_decay_at(int64_t update, double decay) {
  return std::min(1.0 - 1.0 / static_cast<double>(update + 1), decay);
}

void ema_update(const std::vector<at::Tensor>& teacher, const std::vector<at::Tensor>& student, double decay) {
  check<Error>(teacher.size() == student.size(), "ema_update: teacher and student differ in tensor count");
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < teacher.size(); ++i) teacher[i].mul_(decay).add_(student[i].detach(), 1.0 - decay);
}

// The teacher starts as a copy of the model and then follows it through every
// task: it is an average of the student's weights, which the paper does not tie
// to a task, so it is not reset (the weight's ramp-up restarts instead).
void MeanTeacherLoss::before_task(const RunState&) { ensure_teacher(); }

// After the optimizer step: parameters averaged; BN running statistics copied
// (they only matter when the teacher is evaluated; while training, its BN uses
// the batch's statistics, as in the paper's code).
void MeanTeacherLoss::after_iter(const RunState&) {
  ensure_teacher();
  ++updates_;
  ema_update(teacher_params_, student_params_, ema_decay_at(updates_, options_.ema_decay));
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < teacher_buffers_.size(); ++i) teacher_buffers_[i].copy_(student_buffers_[i]);
}

CurrentBatchOutput MeanTeacherLoss::forward(const TrainBatch& batch, const at::Tensor& extra,
                                            const SupervisedLoss& supervised, const RunState& state) {
  Method& m = method();
  const auto& unl = batch.unlabeled;
  const HeadImages head(batch, extra);
  const double weight =
      options_.lambda_u * mean_teacher_ramp(options_.ramp_up, state.iter, state.iters_per_task, options_.unsup_warm_up);
  const bool unlabeled = !unl.empty() && weight > 0;

  torch::Tensor head_logits, student_logits, teacher_logits;
  if (unlabeled) {
    ensure_teacher();
    {
      torch::NoGradGuard no_grad;
      if (options_.teacher_batch_stats) teacher_->train();
      teacher_logits = teacher_->forward(unl.weak);
      teacher_->eval();
    }
    if (options_.concat_forward) {
      const auto logits = forward_concat(m.model(), {head.images, unl.strong});
      head_logits = logits[0];
      student_logits = logits[1];
    } else {
      head_logits = m.model()->forward(head.images);
      student_logits = m.model()->forward(unl.strong);
    }
  } else {
    head_logits = m.model()->forward(head.images);
  }

  CurrentBatchOutput out;
  head.split(head_logits, out);
  out.terms = {{"sup", supervised(m.train_logits(out.labeled_logits, batch.task), batch.labeled.labels)}};
  if (!unlabeled) {
    out.terms.emplace_back("unsup", torch::zeros({}, head_logits.options()));
    return out;
  }
  // Both softmaxes over the task's classes under the task mask (0 elsewhere).
  const auto targets = torch::softmax(m.train_logits(teacher_logits, batch.task), 1);
  const auto mse =
      softmax_mse(m.train_logits(student_logits, batch.task), targets, classes_in_play(m, batch.task)).mean();
  out.terms.emplace_back("unsup", weight * mse);
  return out;
}

std::vector<std::pair<std::string, double>> MeanTeacherLoss::stats() const {
  double bytes = 0;
  for (const auto& t : teacher_params_) bytes += static_cast<double>(t.nbytes());
  for (const auto& t : teacher_buffers_) bytes += static_cast<double>(t.nbytes());
  return {{"teacher_bytes", bytes}, {"ema_updates", static_cast<double>(updates_)}};
}

void MeanTeacherLoss::visit_state(StateVisitor& s) {
  s("updates", updates_);
  s.optional_module("teacher", teacher_, [this] {
    ensure_teacher();  // the architecture; the values follow
    return teacher_;
  });
  if (s.loading() && !teacher_) {  // a checkpoint from before the first task
    teacher_params_.clear();
    student_params_.clear();
    teacher_buffers_.clear();
    student_buffers_.clear();
  }
}

void MeanTeacherLoss::ensure_teacher() {
  if (teacher_) return;
  Method& m = method();
  teacher_ = frozen_copy(m.model(), m.context());
  // Paired by name, so the update does not depend on registration order.
  const auto student_params = m.model()->named_parameters(true);
  const auto student_buffers = m.model()->named_buffers(true);
  for (const auto& item : teacher_->named_parameters(true)) {
    teacher_params_.push_back(item.value());
    student_params_.push_back(student_params[item.key()]);
  }
  for (const auto& item : teacher_->named_buffers(true)) {
    teacher_buffers_.push_back(item.value());
    student_buffers_.push_back(student_buffers[item.key()]);
  }
}

namespace {

SSCL_REGISTER_SEMI_LOSS("mean_teacher", MeanTeacherLoss, MeanTeacherOptions{},
                        "Mean Teacher: the student matches an EMA teacher's softmax on the unlabeled images");

}  // namespace
}  // namespace sscl
