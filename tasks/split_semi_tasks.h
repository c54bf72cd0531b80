// The Split-Semi task sequence the trainer consumes. Each iteration's batch holds
// `batch_size` labeled images (weak view) and `batch_size * uratio` unlabeled
// images from the task's pool, each in a weak and a strong view. data.sampler
// chooses how the images of a batch are picked:
//   uniform  each batch an independent draw (distinct images within the batch),
//            as the reference's iteration-based Split-Semi benchmarks;
//   epoch    each epoch a seeded permutation of the task's labeled images, cut
//            into batches, so an epoch shows every image exactly once (mammoth,
//            Avalanche, PyCIL); the last batch is partial unless data.drop_last.
//            The unlabeled pool is a stream of its own epochs of the same kind.
//   auto     epoch when the run counts epochs (train.epochs_per_task), else uniform.
//
// Determinism: a batch is a function of (seed, task, iteration) alone (the epoch
// and the position in it follow from the iteration), each sample's augmentation of
// (seed, task, iteration, slot), so a batch is bit-identical whatever the number
// of loader threads and after a resume mid-epoch, and the batch after it is
// prepared in the background while the current one trains.
#pragma once

#include <oneapi/tbb/task_arena.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/options.h"
#include "core/task_data.h"
#include "core/world.h"
#include "datasets/augment_pipeline.h"
#include "datasets/image_dataset.h"
#include "tasks/batch_ring.h"
#include "tasks/device_staging.h"
#include "tasks/domains.h"
#include "tasks/task_split.h"

namespace sscl {

// data.workers = 0 (auto): 1 on a CPU, where torch's threads already use every
// core for the step (a second loader thread only competed with them on 2 cores);
// on a GPU every core but the trainer's, for up to 8 threads.
int resolve_workers(int workers, c10::Device device);

struct SplitSemiOptions {
  std::string dataset = "fashion_mnist";
  std::string root = "/usr/share/datasets/fashion-mnist";
  TaskSplitOptions split;
  int64_t batch_size = 8;         // labeled images per iteration
  int64_t uratio = 7;             // unlabeled images per labeled image
  std::vector<double> mean, std;  // empty: the dataset's own
  std::vector<int64_t> resize;    // [rows, cols]: resize every image once at load; empty: native size
  std::string sampler = "auto";   // auto | epoch | uniform
  bool drop_last = false;         // epoch sampler: drop an epoch's last partial batch
  int workers = 0;                // loader threads (TBB); 0: auto (resolve_workers)
  bool prefetch = true;           // a loader thread builds the coming batches (BatchRing)
  int prefetch_factor = 4;        // batches it prepares ahead
  AugmentOptions augment;         // data.augment.*
  DomainOptions domain;           // data.domain.*: domain-IL copies of the dataset

  // data.* (dataset, root, the split's keys, batch_size, uratio, sampler,
  // drop_last, mean, std, workers, prefetch, augment.*, resize); data.sequence and
  // data.scenario are the run builder's.
  static void declare(OptionSpec<SplitSemiOptions>& o);
};

// The task sequence "split_semi" (TaskSequenceRegistry). It keeps the label of
// every training image (HiddenLabels) for the ground-truth oracle only.
class SplitSemiTasks : public TaskData, public HiddenLabels {
 public:
  SplitSemiTasks(SplitSemiOptions options, DatasetSplits data, uint64_t seed);
  ~SplitSemiTasks() override;

  int num_tasks() const override { return static_cast<int>(tasks_.size()); }
  bool domain_incremental() const override { return !data_.domains.empty(); }
  int64_t num_classes() const override { return data_.train->num_classes; }
  InputShape input_shape() const override { return data_.train->shape(); }
  const std::vector<int64_t>& classes(int task) const override { return tasks_.at(task).classes; }
  int64_t batch_size() const override { return options_.batch_size; }
  std::vector<std::string> describe(bool unlabeled_views) const override;
  void set_load_unlabeled(bool load) override;
  void schedule_in_epochs() override;
  int64_t iters_for_epochs(int task, double epochs) const override;
  // Whether batches are epochs of permutations (data.sampler, auto resolved).
  bool epoch_sampler() const { return epoch_sampler_; }
  bool set_shard(int rank, int size) override;
  TrainBatch train_batch(int task, int64_t iter) override;
  int64_t num_eval_batches(int task, int64_t batch_size) const override;
  EvalBatch eval_batch(int task, int64_t batch, int64_t batch_size) const override;
  int64_t num_unlabeled(int task) const override { return static_cast<int64_t>(tasks_.at(task).unlabeled.size()); }
  std::vector<int64_t> unlabeled_ids(int task) const override { return tasks_.at(task).unlabeled; }
  void add_labels(int task, const at::Tensor& ids, const at::Tensor& labels) override;
  LabeledSet labeled_set(int task) const override;
  at::Tensor raw_images(const at::Tensor& ids) const override;
  at::Tensor views(const at::Tensor& raw, View view, uint64_t seed, int64_t first_row = 0) const override;
  at::Tensor hidden_train_labels() const override { return data_.train->labels; }

  const TaskIndices& indices(int task) const { return tasks_.at(task); }
  const DatasetSplits& data() const { return data_; }
  const SplitSemiOptions& options() const { return options_; }

  void set_device(c10::Device device) override;
  int workers() const { return workers_; }

  // The batch of (task, iter), built on the calling thread (no prefetch involved).
  TrainBatch build_batch(int task, int64_t iter) const;

 private:
  SplitSemiOptions options_;
  DatasetSplits data_;
  uint64_t seed_;
  // The permutation of one epoch of a sampler's stream, kept while that epoch's
  // batches are cut from it (a permutation of the task's pool for every batch cost
  // more than the rest of the batch).
  struct EpochOrder {
    std::string_view stream;
    int task = -1;
    int64_t epoch = -1, n = -1;
    std::vector<int64_t> order;
  };
  std::vector<int64_t> epoch_batch(int64_t n, int64_t batch, int64_t iter, std::string_view stream, int task) const;
  void drop_prepared();  // the batches prepared ahead, before what they are drawn from changes

  std::optional<AugmentPipeline> augment_;  // built once mean/std are known
  std::vector<TaskIndices> tasks_;
  bool load_unlabeled_ = true;
  bool epoch_sampler_ = false;
  int workers_;                          // data.workers resolved for the device
  int shard_rank_ = 0, shard_size_ = 1;  // set_shard: this rank's rows of each batch
  mutable tbb::task_arena arena_;
  std::optional<DeviceStager> stager_;  // GPU: pinned copies on a side stream
  std::string device_name_ = "cpu";
  mutable std::mutex epoch_mutex_;
  mutable std::vector<EpochOrder> epoch_orders_;  // one per stream
  std::unique_ptr<BatchRing> ring_;               // last: its thread reads everything above
};

}  // namespace sscl
