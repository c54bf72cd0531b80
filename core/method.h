// The base of every learning method. A method owns the maths: it turns a batch
// into named loss terms (step) and reacts to the lifecycle through the Hook
// virtuals. The base does the bookkeeping: it holds the model and device, knows
// the task sequence, and keeps what the method declares once: its traits (the
// scenarios it supports, the data it uses), its options (core/options.h) and its
// state (core/state.h).
//
// A new method is a subclass with an options struct and one registration line
// (docs/extending.md walks through one):
//
//   class MyMethod : public Method { ... LossTerms step(...) override; };
//   SSCL_REGISTER_METHOD("my_method", MyMethod, MyOptions{}, "what it does, in one line");
#pragma once

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
#include "core/world.h"

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
  // The ranks of a distributed run (core/world.h); null: one process.
  std::shared_ptr<World> world;
};

// method.train_mask: "task" masks the training logits to the current task's
// classes, "none" trains on all logits (the reference), "auto" = "task" in
// task-IL and "none" in class-IL; in domain-IL every mask is every class, so "none". Without the mask, learning a new
// task pushes the old classes' logits down along the new task's features, and in task-IL an old task's look-alike
// classes can end up inverted (docs/methods.md, "Training logits").
bool resolve_train_mask(const std::string& train_mask, Scenario scenario);

// What a method can do and needs, declared once in its constructor
// (Method(MethodTraits{...})) instead of one yes/no virtual each.
struct MethodTraits {
  // Scenarios the method supports; a config asking for another is rejected before
  // training starts. A method that needs the task id (PNN) or keys its state by
  // "the new classes" must leave domain-IL out or say what it means there.
  std::vector<Scenario> scenarios{Scenario::kTaskIL, Scenario::kClassIL, Scenario::kDomainIL};
  // step() reads batch.unlabeled (always so with a semi-supervised loss composed);
  // when false the loader skips those views.
  bool uses_unlabeled = false;
  // The method trains its current batch through forward_current(), so a
  // semi-supervised loss (method.semi) can take that batch over.
  bool composes_with_semi = false;
  // The method needs the labeled images' own logits with gradient (its own
  // SupervisedLoss, LwF's distillation): losses that train on mixed images
  // instead (MixMatch) cannot compose with it.
  bool needs_plain_labeled_pass = false;
  // Active learning (methods/active) adds labels to the current task after a few
  // iterations; false for methods that gather a task's labeled set once at its
  // start (Joint, GDumb), and a run asking for queries with them is refused.
  bool accepts_labels_mid_task = true;
  // model() alone makes the method's predictions and features (false for PNN's
  // columns): the query strategies that copy the model (QBC) or read its
  // features (core-set, BADGE) need it.
  bool single_network = true;
  // The parameters change between tasks (PNN's new column) or training restarts
  // (GDumb): the trainer builds a fresh optimizer (no momentum carried over) over
  // trainable_parameters() after the method's before_task.
  bool fresh_optimizer_each_task = false;
  // The method runs distributed: whatever it keeps it builds from the whole
  // global batch (gather_rows) and its replay draws are sharded, so every rank
  // holds the same state after every iteration. A distributed run of a method
  // without it is refused before training.
  bool distributed = false;
};

class Method : public Hook {
 public:
  explicit Method(MethodTraits traits = {}) : traits_(std::move(traits)) {}
  ~Method() override = default;

  virtual std::string name() const = 0;
  std::string hook_name() const override { return "method:" + name(); }

  const MethodTraits& traits() const { return traits_; }
  // traits().uses_unlabeled, or a semi-supervised loss is composed.
  bool uses_unlabeled() const { return traits_.uses_unlabeled || semi_ != nullptr; }

  // method.semi: a semi-supervised loss for the current batch (see
  // core/semi_loss.h). Throws ConfigError when this method cannot take it.
  void set_semi(std::unique_ptr<SemiLoss> semi);
  const SemiLoss* semi() const { return semi_.get(); }
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

  // Buffers of the method's own trained modules beside the model (PNN's
  // columns' BatchNorm statistics): a distributed run averages them over the
  // ranks every iteration, as it does the model's.
  virtual std::vector<torch::Tensor> extra_buffers() { return {}; }

  // Figures for results.json ("method_stats"), e.g. the replay buffer's bytes.
  virtual std::vector<std::pair<std::string, double>> stats() const { return {}; }
  // stats() followed by the semi-supervised loss's, prefixed "semi.".
  std::vector<std::pair<std::string, double>> all_stats() const;

  // Everything the method holds beyond the model (buffers, importances, ...) it
  // names in visit_state() (core/state.h); this visits it under "method." and the
  // semi-supervised loss's under "semi.".
  void visit_all_state(StateVisitor& visitor);

  // The ranks this run trains in (one process unless distributed).
  World& world() const;
  // Every rank's rows of `local` in rank order: the global batch's rows when
  // `local` is this rank's slice (itself on one process).
  at::Tensor gather_rows(const at::Tensor& local) const { return world().gather_rows(local); }

  // A zero loss term, for an iteration with nothing to train on. Distributed,
  // it reaches every trainable parameter, so a rank whose slice of a draw is
  // empty still gives every gradient (zeros) to the ranks' average.
  at::Tensor zero_term();

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

  MethodTraits traits_;

 private:
  MethodContext context_;
  std::unique_ptr<SemiLoss> semi_;
  std::vector<torch::Tensor> task_masks_;  // [num_classes] bool per task, on the device
  torch::Tensor stacked_task_masks_;       // [num_tasks, num_classes]
};

// Factory: the `method` config section.
SSCL_DECLARE_REGISTRY(MethodRegistry, std::function<std::unique_ptr<Method>(const ConfigSection&)>);

// Registers `Class`, built from its options struct (the type of `defaults`, read
// from [method]): SSCL_REGISTER_METHOD("der", Der, DerOptions{}, "DER: ...").
// Methods come in groups (sscl_train --list; tools/compare compares the
// continual ones): SSCL_REGISTER_METHOD is a continual method on the labeled
// stream, SSCL_REGISTER_SSCL_METHOD one that learns from the unlabeled images
// too (EdgeHML, CCIC), and a semi-supervised loss alone is registered by
// SSCL_REGISTER_SEMI_LOSS (methods/continual/sft.h).
inline const char* const kContinualMethods = "continual";
inline const char* const kSemiSupervisedContinualMethods = "semi-supervised continual";
inline const char* const kSemiSupervisedMethods = "semi-supervised";
#define SSCL_REGISTER_METHOD(name, Class, defaults, summary)                                           \
  SSCL_REGISTER_OPTIONS_IN(::sscl::MethodRegistry, ::sscl::kContinualMethods, name, summary, defaults, \
                           [](const auto& options) { return std::make_unique<Class>(options); })
#define SSCL_REGISTER_SSCL_METHOD(name, Class, defaults, summary)                                                    \
  SSCL_REGISTER_OPTIONS_IN(::sscl::MethodRegistry, ::sscl::kSemiSupervisedContinualMethods, name, summary, defaults, \
                           [](const auto& options) { return std::make_unique<Class>(options); })

// Checks that the method supports `scenario`; throws ConfigError naming both.
void ensure_supported(const Method& method, Scenario scenario);

}  // namespace sscl
