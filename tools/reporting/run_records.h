// The run directories a report is made from: each directory holding a
// config.toml is a run; it is finished when its results.json parses, failed when
// its train.log says so, incomplete otherwise. Runs whose configs differ only in
// train.seed share a group, and a report averages a group's finished runs.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sscl::report {

enum class RunStatus { kFinished, kFailed, kIncomplete };
std::string to_string(RunStatus status);

struct RunRecord {
  std::filesystem::path dir;
  RunStatus status = RunStatus::kIncomplete;
  std::string reason;  // why a run is not finished (the failure line, or what is missing)
  std::string group;   // the config's fingerprint with train.seed set to 0
  std::string name, method, dataset, backbone, scenario;
  int64_t seed = 0;
  nlohmann::json results;  // results.json of a finished run
};

// Every run under `roots` (each a run directory or a folder searched
// recursively), sorted by directory. A config.toml that does not load makes the
// run failed, with the loader's message as the reason.
std::vector<RunRecord> collect_runs(const std::vector<std::filesystem::path>& roots);

// An edge-cloud threshold sweep written by tools/infer (an infer.json with
// edge_cloud.sweep): accuracy against the share of images uploaded.
struct SweepRecord {
  std::filesystem::path file;
  std::string label;                              // the infer.json's folder and the route
  std::vector<std::pair<double, double>> points;  // (uploaded %, accuracy %)
};

// The (uploaded %, accuracy %) points of infer.json's edge_cloud.sweep;
// nlohmann::json's exception when an entry lacks its keys.
std::vector<std::pair<double, double>> sweep_points(const nlohmann::json& sweep);

// Every infer.json under `roots` that holds a sweep, sorted by file;
// std::runtime_error naming the file when one does not parse.
std::vector<SweepRecord> collect_sweeps(const std::vector<std::filesystem::path>& roots);

}  // namespace sscl::report
