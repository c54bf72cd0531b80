// tools/pretrain: self-supervised pretraining of a config's backbone with
// SimSiam (methods/selfsup/simsiam.h) on the images of its dataset, their labels
// unused, writing WORK_DIR/model.pt (the backbone as a torch.save state_dict
// under `backbone.`), which model.pretrained reads, and pretrain.json.
//
// The config is a training config: its [data], [model] and [train] sections say
// what to pretrain on, what to pretrain and with how many threads, and its
// [pretrain] section how (tools/train reads that section's keys and ignores
// them). The whole config is built and checked, as tools/train would, before
// the directory is created.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/options.h"
#include "datasets/simsiam_augment.h"
#include "methods/selfsup/simsiam.h"

namespace sscl {

// [pretrain]
struct PretrainOptions {
  std::string images = "train";  // "train": every task's images; "first_task": the first task's only
  int64_t iters = 1000;
  int64_t batch_size = 256;
  double lr = 0.05;  // SimSiam's 0.05 * batch / 256 at batch 256; cosine-decayed to 0
  double momentum = 0.9;
  double weight_decay = 5e-4;  // SimSiam's CIFAR setting
  bool fix_pred_lr = true;     // the predictor keeps lr (SimSiam's default)
  int64_t log_interval = 50;
  SimSiamOptions simsiam;         // proj_dim, pred_dim, proj_layers
  SimSiamAugmentOptions augment;  // pretrain.augment.*
  static void declare(OptionSpec<PretrainOptions>& o);
};

struct PretrainArgs {
  std::filesystem::path config;
  std::vector<std::string> overrides;  // key=value
  std::optional<std::filesystem::path> work_dir;
  std::filesystem::path work_dirs_root = "work_dirs";
  std::vector<std::filesystem::path> plugins;
};

struct PretrainOutcome {
  std::filesystem::path run_dir;
  nlohmann::json results;  // pretrain.json
};

// Throws sscl::Error on bad input, before anything is written; a run that
// fails later (a non-finite loss) leaves its log but no model.pt.
PretrainOutcome run_pretraining(const PretrainArgs& args);

}  // namespace sscl
