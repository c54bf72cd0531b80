#include "tools/reporting/run_records.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "core/config.h"

namespace sscl::report {

namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The last line of train.log that reports a failure, if any.
std::string failure_line(const fs::path& log) {
  std::ifstream in(log);
  std::string line, found;
  while (std::getline(in, line))
    if (line.find("run failed") != std::string::npos) found = line;
  return found;
}

RunRecord read_run(const fs::path& dir) {
  RunRecord r;
  r.dir = dir;
  try {
    Config config = Config::load(dir / "config.toml");
    r.name = config.get_or<std::string>("name", dir.filename().string());
    r.method = config.get_or<std::string>("method.name", "?");
    if (config.has("method.semi")) r.method += "+" + config.get<std::string>("method.semi");
    r.dataset = config.get_or<std::string>("data.dataset", "?");
    r.backbone = config.get_or<std::string>("model.backbone", "?");
    r.scenario = config.get_or<std::string>("data.scenario", "task-il");
    r.seed = config.get_or<int64_t>("train.seed", 0);
    config.apply_override("train.seed=0");
    r.group = config.fingerprint();
  } catch (const std::exception& e) {
    r.status = RunStatus::kFailed;
    r.reason = e.what();
    return r;
  }
  const auto results = dir / "results.json";
  if (fs::exists(results)) {
    try {
      r.results = nlohmann::json::parse(read_text(results));
      r.status = RunStatus::kFinished;
      return r;
    } catch (const std::exception& e) {
      r.status = RunStatus::kFailed;
      r.reason = results.string() + ": " + e.what();
      return r;
    }
  }
  const auto failure = failure_line(dir / "train.log");
  r.status = failure.empty() ? RunStatus::kIncomplete : RunStatus::kFailed;
  r.reason = failure.empty() ? "no results.json" : failure;
  return r;
}

}  // namespace

std::string to_string(RunStatus status) {
  switch (status) {
    case RunStatus::kFinished: return "finished";
    case RunStatus::kFailed: return "failed";
    case RunStatus::kIncomplete: return "incomplete";
  }
  return "?";
}

std::vector<RunRecord> collect_runs(const std::vector<fs::path>& roots) {
  std::set<fs::path> dirs;
  for (const auto& root : roots) {
    if (fs::exists(root / "config.toml")) dirs.insert(fs::canonical(root));
    if (!fs::is_directory(root)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(root))
      if (entry.is_regular_file() && entry.path().filename() == "config.toml")
        dirs.insert(fs::canonical(entry.path().parent_path()));
  }
  std::vector<RunRecord> out;
  for (const auto& dir : dirs) out.push_back(read_run(dir));
  return out;
}

std::vector<std::pair<double, double>> sweep_points(const nlohmann::json& sweep) {
  std::vector<std::pair<double, double>> points;
  for (const auto& p : sweep)
    points.emplace_back(100.0 * p.at("upload_share").get<double>(), p.at("accuracy").get<double>());
  return points;
}

std::vector<SweepRecord> collect_sweeps(const std::vector<fs::path>& roots) {
  std::set<fs::path> files;
  for (const auto& root : roots) {
    if (fs::is_regular_file(root / "infer.json")) files.insert(fs::canonical(root / "infer.json"));
    if (!fs::is_directory(root)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(root))
      if (entry.is_regular_file() && entry.path().filename() == "infer.json") files.insert(fs::canonical(entry.path()));
  }
  std::vector<SweepRecord> out;
  for (const auto& file : files) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text(file));
    } catch (const std::exception& e) {
      throw std::runtime_error(file.string() + ": not an infer.json of tools/infer (" + e.what() + ")");
    }
    if (!j.contains("edge_cloud") || !j["edge_cloud"].contains("sweep")) continue;
    SweepRecord r;
    r.file = file;
    try {
      r.label = file.parent_path().filename().string() + ": " + j["edge_cloud"].value("route", std::string("?"));
      r.points = sweep_points(j["edge_cloud"]["sweep"]);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(file.string() + ": edge_cloud.sweep is not tools/infer's (" + e.what() + ")");
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace sscl::report
