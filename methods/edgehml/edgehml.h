// EdgeHML (Wang et al., "EdgeHML: hierarchical memory and progressive learning
// for semi-supervised continual learning at the edge"), as the reference
// framework implements it, with the reference's bugs fixed (docs/methods.md, "EdgeHML").
//
// Per iteration t of a task (every term its own entry in the log):
//   sup          lambda_sup * CE(labeled batch)
//   sup_replay   lambda_sup_replay * CE(minibatch_size draws of the labeled tier)
//   unsup        w(t) * FixMatch(weak, strong; threshold), w(t) = 0 for the first
//                unsup_warmup_iters iterations, then an optional cosine ramp to
//                lambda_u; while w(t) = 0 the unlabeled views never reach the model
//   unsup_replay lambda_ur * CE(minibatch_size draws of the online tier, pseudo-labels)
// then the labeled batch enters the labeled tier and the confident current-task
// unlabeled images (weak-view confidence >= threshold) the offline tier.
// At each task end the online tier is refilled from the offline tier by the
// class-weighted draw (memory_tiers.h), within a budget of S_sup minus the
// labeled tier's entries, split evenly over the tasks seen.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/options.h"
#include "methods/common/running_mean.h"
#include "methods/continual/er.h"
#include "methods/edgehml/memory_tiers.h"

namespace sscl {

struct EdgeHmlOptions {
  std::vector<int64_t> pool_sizes = {200, 2000};  // [S_sup, S_off], the reference's key
  int64_t online_pool_size = 0;                   // 0: S_sup - labeled entries at each task end
  int64_t minibatch_size = 0;                     // each replay draw; 0: data.batch_size
  double lambda_sup = 1.0;
  double lambda_sup_replay = 1.0;
  double lambda_u = 1.0;   // reference: lambda_unsup
  double lambda_ur = 0.1;  // reference: lambda_unsup_replay
  bool need_sup_replay = true;
  bool need_unsup_replay = true;
  int64_t unsup_warmup_iters = 200;      // reference: unsup_iter_threshold
  int64_t unsup_ramp_iters = 0;          // reference: threshold_length
  int64_t sup_replay_start_iter = -1;    // reference: sup_iter_threshold
  int64_t unsup_replay_start_iter = -1;  // reference: unsup_replay_iter_threshold
  double threshold = 0.95;               // FixMatch's and the offline tier's confidence
  OfflineStorage offline_storage = OfflineStorage::kDisk;
  bool concat_forward = true;
  // Refill the online tier inside the first timed iteration of the next task
  // instead of after the task (so the disk read counts in ms/iter).
  bool include_harddisk_read_time = false;

  int64_t labeled_pool_size() const { return pool_sizes.at(0); }  // S_sup
  int64_t offline_pool_size() const { return pool_sizes.at(1); }  // S_off
  static void declare(OptionSpec<EdgeHmlOptions>& o);
};

class EdgeHml : public Er {
 public:
  explicit EdgeHml(EdgeHmlOptions options);
  ~EdgeHml() override;

  std::string name() const override { return "edgehml"; }

  void attach(MethodContext context) override;
  void before_task(const RunState& state) override;
  void after_task(const RunState& state) override;
  LossTerms step(const TrainBatch& batch, const RunState& state) override;

  std::vector<std::pair<std::string, double>> stats() const override;
  // The labeled tier (Er's "buffer"), the online and offline tiers, the counters.
  void visit_state(StateVisitor& s) override;

  const EdgeHmlOptions& options() const { return edge_options_; }
  const ReplayBuffer& labeled_tier() const { return buffer_; }
  const ReplayBuffer& online_tier() const { return online_; }
  OfflineTier& offline_tier() { return *offline_; }

 private:
  // Mean CE per class of the labeled tier's images of `task` (eval mode, no
  // gradient): in class-IL those are the class's entries anyway; in domain-IL a
  // class's entries of earlier domains would blur how hard the current one is.
  std::vector<double> labeled_class_losses(const std::vector<int64_t>& classes, int task);
  // The task-end draw from the offline tier into the online tier.
  void refill_online_tier(int task);

  EdgeHmlOptions edge_options_;
  ReplayBuffer online_;
  std::unique_ptr<OfflineTier> offline_;
  std::filesystem::path temp_dir_;  // the offline file's folder when the run has none
  int pending_refill_task_ = -1;    // include_harddisk_read_time: refill at the next step
  // Figures for stats().
  double read_seconds_ = 0;
  int64_t peak_disk_bytes_ = 0;
  int64_t peak_offline_ram_bytes_ = 0;
  int64_t offline_stored_ = 0;
  int64_t online_drawn_ = 0;
  RunningMean mask_rate_;  // confident weak views
};

}  // namespace sscl
