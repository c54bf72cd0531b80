// The trainer's view of a task sequence. tasks/ implements it (Split-Semi tasks);
// core knows nothing of datasets. Batches are a pure function of (task, iteration)
// so that a run can be reproduced and resumed, whatever the loader's threading.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <vector>

#include "core/batch.h"
#include "core/nn/backbone.h"

namespace sscl {

// How replayed images are prepared: normalised only, or through the weak or strong
// augmentation of the training batches.
enum class View { kPlain, kWeak, kStrong };

// The labeled images of a task: their training-set ids and revealed labels.
struct LabeledSet {
  at::Tensor ids;     // [N] int64
  at::Tensor labels;  // [N] int64
};

class TaskData {
 public:
  virtual ~TaskData() = default;

  virtual int num_tasks() const = 0;
  // Every task holds every class and the tasks differ by domain (domain-IL).
  virtual bool domain_incremental() const { return false; }
  virtual int64_t num_classes() const = 0;
  virtual InputShape input_shape() const = 0;
  virtual const std::vector<int64_t>& classes(int task) const = 0;
  // Labeled images per training batch (the default replay batch of methods).
  virtual int64_t batch_size() const = 0;
  // Lines for the run's log: what the tasks hold, and with `unlabeled_views` how
  // the unlabeled images are augmented.
  virtual std::vector<std::string> describe(bool /*unlabeled_views*/) const { return {}; }

  // Whether train batches carry the unlabeled views (skipped for methods that
  // would ignore them: no decoding or augmentation is spent on them).
  virtual void set_load_unlabeled(bool load) = 0;

  // The run counts its iterations in epochs (train.epochs_per_task): a sequence
  // whose sampler follows the schedule (data.sampler = "auto") makes its batches
  // epochs that see every image once. Called before the first batch.
  virtual void schedule_in_epochs() {}
  // The training device, before the first batch: a sequence may size its loader
  // for it and hand over batches already on it (train_batch's tensors may then be
  // on `device`).
  virtual void set_device(c10::Device /*device*/) {}
  // Iterations that make `epochs` epochs of `task`'s labeled images; by default
  // ceil(epochs * labeled / batch_size).
  virtual int64_t iters_for_epochs(int task, double epochs) const;

  // A distributed run: from now on train_batch holds only rank `rank`'s rows of
  // each global batch (shard_range, core/world.h, over its labeled rows and over
  // its unlabeled rows), each augmented as in its global slot. False when the
  // sequence cannot (the trainer then refuses to run distributed).
  virtual bool set_shard(int /*rank*/, int /*size*/) { return false; }
  // The training batch of iteration `iter` of `task`, on the CPU or on the device
  // set_device named. An implementation may prepare the next ones in the background.
  virtual TrainBatch train_batch(int task, int64_t iter) = 0;

  // Evaluation data of `task` in batches of at most `batch_size` images.
  virtual int64_t num_eval_batches(int task, int64_t batch_size) const = 0;
  virtual EvalBatch eval_batch(int task, int64_t batch, int64_t batch_size) const = 0;

  // Size of the task's unlabeled pool (FlexMatch's per-image learning status).
  virtual int64_t num_unlabeled(int task) const = 0;

  // Active learning (methods/active): the ids of the task's images that have no
  // label yet (images only; their labels stay hidden), and the labels an oracle
  // gave to some of them. add_labels moves `ids` from the unlabeled pool to the
  // labeled set with `labels`; batches from the next iteration on use them.
  virtual std::vector<int64_t> unlabeled_ids(int task) const = 0;
  virtual void add_labels(int task, const at::Tensor& ids, const at::Tensor& labels) = 0;

  // Access for methods that keep images (replay buffers, Joint, iCaRL, GDumb,
  // Fisher estimation). Only labels that were revealed are reachable here.
  virtual LabeledSet labeled_set(int task) const = 0;
  // Training images by id as stored: uint8 [N, H, W, C], a copy.
  virtual at::Tensor raw_images(const at::Tensor& ids) const = 0;
  // uint8 [N, H, W, C] -> float [N, C, H, W] on the CPU, through `view`; the
  // augmentation of image i is seeded by (seed, i) alone.
  // `first_row`: the raw images are rows first_row.. of a larger draw, each
  // augmented as in that draw (a rank's slice of a global replay batch).
  virtual at::Tensor views(const at::Tensor& raw, View view, uint64_t seed, int64_t first_row = 0) const = 0;
};

// What a task sequence keeps from the learner: the label of every training image.
// Only the ground-truth oracle of active learning (a simulated annotator) asks,
// through a cast; methods see TaskData alone.
class HiddenLabels {
 public:
  virtual ~HiddenLabels() = default;
  virtual at::Tensor hidden_train_labels() const = 0;  // int64 [num_train_images]
};

// Factory: the [data] section and the run's seed. data.sequence names the entry.
SSCL_DECLARE_REGISTRY(TaskSequenceRegistry,
                      std::function<std::unique_ptr<TaskData>(const ConfigSection&, uint64_t seed)>);

}  // namespace sscl
