// Progressive Neural Networks (Rusu et al. 2016): one column per task, with
// lateral connections from every earlier column (methods/continual/pnn_column.h
// gives the adapters' exact form). Training task t trains column t, its adapters
// and its head; columns 0..t-1 are frozen (no gradient, BN in eval mode) and only
// feed it. Task t's classes are predicted by column t, so PNN needs the task id:
// task-IL only.
//
// Column 0 is the run's model (MethodContext::model): its backbone split into
// stages, and its head read at task 0's classes. So model()->forward(images) is
// column 0's classifier, the PNN's prediction for task 0; it is frozen from task 1
// on. Columns 1.. are built with context().make_backbone() (a fresh network of the
// same architecture) plus adapters and a Linear head over their task's classes.
// Column 0's parameter count is the model's, its head(s) over all classes included.
// Column t is initialised with torch's CPU generator seeded by the stream
// "pnn.column_init" at t (its state restored after), so it is the same network
// on a resume, where the checkpoint's values then replace its initial ones.
//
// The loss is cross-entropy over column t's logits of task t's classes (the other
// classes get -inf, the task mask), so method.train_mask changes nothing here.
#pragma once

#include <memory>
#include <vector>

#include "core/nn/classifier.h"
#include "methods/continual/pnn_column.h"

namespace sscl {

class ProgressiveNet {
 public:
  // Column 0 = `model`; `task_classes[t]`: the class ids of task t (column t's head).
  // Throws ConfigError when the model's backbone has no stages.
  ProgressiveNet(Classifier model, std::vector<std::vector<int64_t>> task_classes, torch::Device device,
                 double alpha_init);

  int num_columns() const { return static_cast<int>(columns_.size()); }
  // Adds column num_columns() on `backbone` (a fresh one of the model's
  // architecture), with adapters from every earlier column and a head over its
  // task's classes, on the device; freezes every earlier column (no gradient,
  // its stale .grad dropped).
  void add_column(std::shared_ptr<Backbone> backbone);

  // Column `column`'s logits over its task's classes [N, |classes|]; columns
  // 0..column-1 run without gradient. Modes are the caller's (set_modes).
  torch::Tensor task_logits(const torch::Tensor& images, int column);
  // Every column's logits at its task's class ids: [N, num_classes]; the classes
  // of tasks without a column yet get `fill`.
  torch::Tensor logits(const torch::Tensor& images, double fill = 0.0);
  // Column `column`'s task logits placed at its classes in [N, num_classes], `fill` elsewhere.
  torch::Tensor to_all_classes(int column, const torch::Tensor& task_logits, double fill) const;

  // Column `training` (and its adapters) in train mode, the others in eval mode
  // (frozen BN); training = -1: all in eval mode.
  void set_modes(int training);

  // Column `column`'s own parameters: backbone, adapters and head (column 0: the model's).
  std::vector<torch::Tensor> column_parameters(int column) const;
  int64_t parameter_count(int column) const;
  int64_t adapter_parameter_count(int column) const;

  PnnColumn& column(int c) { return columns_.at(static_cast<size_t>(c)); }
  const std::vector<int64_t>& classes(int c) const { return task_classes_.at(static_cast<size_t>(c)); }

 private:
  // Runs columns 0..last, each on the earlier ones' activations.
  std::vector<PnnColumnImpl::Output> run_columns(const torch::Tensor& images, int last);
  // Column `column`'s head on its head input: [N, |classes|].
  torch::Tensor head_logits(int column, const torch::Tensor& head_input);

  Classifier model_;
  std::vector<std::vector<int64_t>> task_classes_;
  std::vector<torch::Tensor> class_ids_;  // int64 per task, on the device
  torch::Device device_;
  double alpha_init_;
  std::vector<PnnColumn> columns_;
};

}  // namespace sscl
