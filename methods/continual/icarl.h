// iCaRL (Rebuffi et al., CVPR 2017): a memory of exemplars chosen by herding,
// split evenly over the classes seen; training with sigmoid binary cross-entropy
// whose old-class targets come from the previous model (distillation); and
// classification by the nearest mean of exemplars (NME). Options: MemoryOptions
// (buffer_size >= 1, split over the classes seen; minibatch_size).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/method.h"
#include "core/world.h"
#include "methods/common/replay.h"
#include "methods/common/replay_buffer.h"

namespace sscl {

// Herding (Alg. 4 of the paper): the rows of `features` [N, D] chosen one by one
// so that the mean of the chosen ones stays closest to the mean of all, on
// L2-normalised features. Returns min(m, N) distinct row indices in selection order.
std::vector<int64_t> herding_selection(const at::Tensor& features, int64_t m);

// Reduce (Alg. 5): the rows to keep when every class keeps its first m entries.
// `labels` [N] lists the entries in stored order (each class's in herding order).
// With `tasks` [N], every (class, task) pair keeps its first m: the same in
// class-IL (a class has one task), a quota per class per domain in domain-IL.
std::vector<int64_t> keep_first_per_class(const at::Tensor& labels, int64_t m, const at::Tensor& tasks = {});

// Class means of exemplar features (Alg. 1): each class's L2-normalised features
// averaged and re-normalised. Returns means [num_classes, D] (zero rows for
// classes without exemplars) and has_mean [num_classes] bool.
std::pair<at::Tensor, at::Tensor> exemplar_means(const at::Tensor& features, const at::Tensor& labels,
                                                 int64_t num_classes);

// What NME logits hold for a class without exemplars: below any real one
// (distances between unit vectors are at most 2), finite so argmax stays defined.
constexpr double kNoMeanLogit = -1e9;

// NME as logits: -||phi(x) - mu_y|| with phi(x) L2-normalised; `means` [C, D]
// are normalised already; classes without a mean get kNoMeanLogit.
at::Tensor nme_logits(const at::Tensor& features, const at::Tensor& means, const at::Tensor& has_mean);

// Targets of the iCaRL loss (Alg. 3): one-hot labels, except for the old classes
// (`old_classes` bool [C]), whose targets are the previous model's sigmoid
// outputs. `old_logits` undefined (first task): one-hot everywhere.
at::Tensor icarl_targets(const at::Tensor& labels, const at::Tensor& old_logits, const at::Tensor& old_classes,
                         int64_t num_classes);

// Sigmoid binary cross-entropy averaged over the entries where `class_mask`
// (bool, [N, C] or [C]) is true: the classes each row is trained on. With
// `world` (a distributed run, each rank passing its rows), the average is over
// every rank's entries once the trainer averages the gradients.
at::Tensor icarl_bce(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& class_mask,
                     World* world = nullptr);

class Icarl : public Method {
 public:
  // Distributed: the replay draws are sharded, the loss is normalised by the
  // global count, and exemplars and class means come from features every rank
  // gathers alike (herding then chooses the same exemplars everywhere).
  explicit Icarl(const ReplayOptions& options);

  std::string name() const override { return "icarl"; }
  void attach(MethodContext context) override;
  LossTerms step(const TrainBatch& batch, const RunState& state) override;
  void after_task(const RunState& state) override;
  torch::Tensor predict(const torch::Tensor& images) override;

  std::vector<std::pair<std::string, double>> stats() const override;
  void visit_state(StateVisitor& s) override;

  const ReplayBuffer& memory() const { return memory_; }
  bool has_class_means() const { return means_.defined(); }
  bool has_teacher() const { return static_cast<bool>(teacher_); }

 private:
  // Normalised features of uint8 images, in eval mode and chunks, on the device.
  torch::Tensor plain_features(const torch::Tensor& raw);
  // Classes of tasks [0, last] as a bool mask [num_classes] on the device.
  torch::Tensor classes_up_to(int last) const;
  void update_exemplars(int task);
  void update_class_means();

  ReplayOptions options_;
  ReplayBuffer memory_;
  Classifier teacher_{nullptr};  // the model at the end of the previous task
  torch::Tensor means_;          // [num_classes, D], normalised; undefined before the first task ends
  torch::Tensor has_mean_;       // [num_classes] bool
  std::vector<torch::Tensor> task_class_masks_;
};

}  // namespace sscl
