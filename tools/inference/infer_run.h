// tools/infer: on-device figures of an exported model on a run's test images
// (accuracy per task, latency at batch 1, throughput at batch 32, bytes, peak
// RSS), and edge-cloud collaborative inference: images the edge model finds hard
// (tools/inference/routing.h) answered by a cloud model instead.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tools/inference/routing.h"

namespace sscl {

struct InferOptions {
  std::filesystem::path model;  // tools/export's model file or output directory
  // A run directory or a config file whose test images are used; empty: the
  // run the model was exported from (export.json's run_dir).
  std::filesystem::path data;
  std::filesystem::path cloud;  // empty: no edge-cloud evaluation
  std::optional<Route> route;   // with `cloud`
  int threads = 1;              // torch intra-op threads while timing
  int64_t warmup = 10;          // untimed runs before each timing
  int64_t latency_images = 200;
  int64_t throughput_batch = 32;
  int64_t throughput_batches = 10;
  int64_t eval_batch = 256;  // batch of the accuracy pass (not timed)
};

// Everything measured, as tools/infer's JSON. ConfigError / IoError naming the
// file or option on bad input (a cloud model with other classes than the edge
// model's, data whose classes or image shape differ from the model's).
nlohmann::json infer(const InferOptions& options);

// The table tools/infer prints.
std::string infer_table(const nlohmann::json& result);

}  // namespace sscl
