// results.json and the end-of-run table.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/run_state.h"
#include "core/task_data.h"

namespace sscl {

struct RunSummary {
  std::string name, method, dataset, backbone, scenario, device, config_hash, blas, blas_threads;
  int threads = 0;
  uint64_t seed = 0;
  double wall_s = 0;
  std::vector<std::pair<std::string, double>> method_stats;  // Method::stats()
  nlohmann::json active_learning;                            // the queries and who labeled what; null without [active]
  nlohmann::json resumes;          // one entry per resume (checkpoint, position, overrides); null when none
  nlohmann::json split;            // split_json() of the task sequence before training; null when not taken
  nlohmann::json precision;        // train.amp, eval.amp, model.channels_last; null: float32
  nlohmann::json pretrained;       // model.pretrained: what was loaded (core/nn/pretrained.h); null without
  nlohmann::json fine_tune;        // model.freeze, model.frozen_stages, optimizer.lr_mult; null without
  int64_t peak_device_bytes = -1;  // GPU: the caching allocator's peak; -1 on a CPU
  int world_size = 1;              // ranks of a distributed run
  std::string backend = "none";    // their c10d backend
};

// The split as built: each task's classes, labeled images per class and
// unlabeled pool (the label budgets actually drawn, before any active query).
nlohmann::json split_json(const TaskData& data);

// Everything the issue asks of results.json: both accuracy matrices and their
// metrics, timing, peak memory and the environment.
nlohmann::json results_json(const RunState& state, const RunSummary& summary);

// Human-readable tables of both accuracy matrices, the metrics and ms/iter.
std::string results_table(const RunState& state, const RunSummary& summary);

}  // namespace sscl
