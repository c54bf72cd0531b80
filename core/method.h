// The base of every learning method. A method owns the maths: it turns a batch
// into named loss terms (step) and reacts to the lifecycle through the Hook
// virtuals. The base does the bookkeeping: it holds the model and device, knows
// the task sequence, declares the scenarios the method supports and which data it
// uses, and saves/loads its state for checkpoints.
//
// A new method is a subclass with an options struct and one registration line:
//
//   class MyMethod : public Method { ... LossTerms step(...) override; };
//   SSCL_REGISTER(MethodRegistry, "my_method", make_my_method);
#pragma once

#include <torch/serialize/archive.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/batch.h"
#include "core/config.h"
#include "core/device.h"
#include "core/hook.h"
#include "core/nn/classifier.h"
#include "core/random.h"
#include "core/registry.h"
#include "core/scenario.h"
#include "core/semi_loss.h"
#include "core/task_data.h"

namespace sscl {

// What a method may know about the run it is part of.
struct MethodContext {
  Classifier model{nullptr};
  torch::Device device{torch::kCPU};
  Scenario scenario = Scenario::kTaskIL;
  std::vector<std::vector<int64_t>> task_classes;  // classes of each task
  uint64_t seed = 0;
  // Restrict training logits to the current task's classes (method.train_mask).
  bool mask_train_logits = false;
  // The task sequence, for methods that keep or revisit images (replay, Joint,
  // iCaRL, GDumb, Fisher estimation); null in tests that need none of it.
  const TaskData* data = nullptr;
  // Labeled images per iteration (data.batch_size); the default replay batch.
  int64_t batch_size = 0;
  // A fresh backbone of the run's architecture (PNN's columns, GDumb's restart).
  std::function<std::shared_ptr<Backbone>()> make_backbone;
  // The run directory (results.json, checkpoints); methods that keep files of
  // their own put them under it (EdgeHML's offline tier). Empty in tests.
  std::filesystem::path run_dir;
};

// method.train_mask: "task" masks the training logits to the current task's
// classes, "none" trains on all logits (the reference), "auto" = "task" in
// task-IL and "none" in class-IL. Without the mask, learning a new task pushes the
// old classes' logits down along the new task's features, and in task-IL an old
// task's look-alike classes can end up inverted (see README, "Training logits").
bool resolve_train_mask(const std::string& train_mask, Scenario scenario);

class Method : public Hook {
 public:
  ~Method() override = default;

  virtual std::string name() const = 0;
  std::string hook_name() const override { return "method:" + name(); }

  // Scenarios the method supports; a config asking for another is rejected before
  // training starts.
  virtual std::vector<Scenario> supported_scenarios() const { return {Scenario::kTaskIL, Scenario::kClassIL}; }
  // Whether step() reads batch.unlabeled. When false the loader skips those views.
  virtual bool uses_unlabeled() const { return semi_ != nullptr; }

  // method.semi: a semi-supervised loss for the current batch (see
  // core/semi_loss.h). Throws ConfigError when this method cannot take it.
  void set_semi(std::unique_ptr<SemiLoss> semi);
  const SemiLoss* semi() const { return semi_.get(); }
  // Methods that train their current batch through forward_current() say so.
  virtual bool composes_with_semi() const { return false; }
  // True for methods that need the labeled images' own logits with gradient (their
  // own SupervisedLoss, LwF's distillation): losses that train on mixed images
  // instead (MixMatch) cannot compose with them.
  virtual bool needs_plain_labeled_pass() const { return false; }
  // Active learning (methods/active) adds labels to the current task after a few
  // iterations. Methods that gather a task's labeled set once at its start (Joint,
  // GDumb) say false, and a run asking for queries with them is refused.
  virtual bool accepts_labels_mid_task() const { return true; }
  // Whether model() alone makes the method's predictions and features (false for
  // PNN's columns): the query strategies that copy the model (QBC) or read its
  // features (core-set, BADGE) need it.
  virtual bool single_network() const { return true; }
  // "der" or "der+fixmatch".
  std::string display_name() const { return semi_ ? name() + "+" + semi_->name() : name(); }
  // The hooks the trainer wraps around the user hooks: the method, then its loss.
  std::vector<Hook*> lifecycle_hooks();

  // Called once by the runner before training.
  virtual void attach(MethodContext context);

  // Forward passes and losses of one iteration (the model is in train mode). The
  // trainer sums the terms, checks they are finite, runs backward and steps.
  virtual LossTerms step(const TrainBatch& batch, const RunState& state) = 0;

  // Called between backward and the optimizer step: the place for gradient
  // surgery (A-GEM projection, SI's gradient record, ...).
  virtual void after_backward(const RunState&) {}

  // Logits for evaluation (the model is in eval mode, gradients are off).
  virtual torch::Tensor predict(const torch::Tensor& images) { return model()->forward(images); }

  // Parameters the optimizer updates.
  virtual std::vector<torch::Tensor> trainable_parameters() { return model()->parameters(); }
  // True for methods whose parameters change between tasks (PNN's new column) or
  // that restart training (GDumb): the trainer then builds a fresh optimizer
  // (no momentum carried over) over trainable_parameters() after the method's
  // before_task.
  virtual bool fresh_optimizer_each_task() const { return false; }

  // Figures for results.json ("method_stats"), e.g. the replay buffer's bytes.
  virtual std::vector<std::pair<std::string, double>> stats() const { return {}; }
  // stats() followed by the semi-supervised loss's, prefixed "semi.".
  std::vector<std::pair<std::string, double>> all_stats() const;

  // Everything the method holds beyond the model (buffers, importances, ...).
  void save_state(torch::serialize::OutputArchive&) const override {}
  void load_state(torch::serialize::InputArchive&) override {}
  // save_state/load_state and the semi-supervised loss's.
  void save_all(torch::serialize::OutputArchive& archive) const;
  void load_all(torch::serialize::InputArchive& archive);

  Classifier& model() { return context_.model; }
  const MethodContext& context() const { return context_; }
  const std::vector<int64_t>& task_classes(int task) const { return context_.task_classes.at(task); }
  // The task data; throws naming the method when the context has none.
  const TaskData& data() const;
  // A generator of the named stream at a position, from the run's seed:
  // rng("der.replay", task, iter).
  template <typename... Position>
  Rng rng(std::string_view stream_name, Position... position) const {
    return Rng(stream_seed(context_.seed, stream_name, position...));
  }

  // The training logits of images of `task`: masked to -inf outside the task's
  // classes when the context asks for it (for cross-entropy-type losses; do not
  // feed the result to losses on raw logits such as MSE), unchanged otherwise.
  torch::Tensor train_logits(const torch::Tensor& logits, int task) const;
  // The same per row, for images of several tasks (replayed ones): row i is masked
  // to the classes of tasks[i] (int64 [N], on the device).
  torch::Tensor train_logits(const torch::Tensor& logits, const torch::Tensor& tasks) const;

 protected:
  // The current batch through the model: with a semi-supervised loss composed,
  // its passes and terms; otherwise one pass over [labeled, extra] and "sup" =
  // `supervised` (cross-entropy by default) on the task-masked labeled logits.
  CurrentBatchOutput forward_current(const TrainBatch& batch, const RunState& state, const at::Tensor& extra = {},
                                     const SupervisedLoss& supervised = {});

 private:
  MethodContext context_;
  std::unique_ptr<SemiLoss> semi_;
  std::vector<torch::Tensor> task_masks_;  // [num_classes] bool per task, on the device
  torch::Tensor stacked_task_masks_;       // [num_tasks, num_classes]
};

// Factory: the `method` config section.
SSCL_DECLARE_REGISTRY(MethodRegistry, std::function<std::unique_ptr<Method>(const ConfigSection&)>);

// Checks that the method supports `scenario`; throws ConfigError naming both.
void ensure_supported(const Method& method, Scenario scenario);

}  // namespace sscl
