// Trains a run from a config: loads its plugins, has the run builder
// (core/run_builder.h) build every component, then owns the run directory. The
// directory is created only after the whole config has been read and validated,
// and results.json is written last, atomically: a directory without results.json
// is not a finished run.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"

namespace sscl {

struct TrainArgs {
  std::filesystem::path config;
  std::vector<std::string> overrides;  // key=value
  std::optional<std::filesystem::path> work_dir;
  std::filesystem::path work_dirs_root = "work_dirs";
  // A run directory to go on with (its config.toml and newest readable
  // checkpoint), or "auto": the newest unfinished run of `config` (or of
  // --work-dir) with a checkpoint, and a fresh run when there is none.
  std::optional<std::string> resume;
  // Shared libraries to load before the config is read (--plugin), beside the
  // config's `plugins`.
  std::vector<std::filesystem::path> plugins;
};

struct TrainOutcome {
  std::filesystem::path run_dir;
  nlohmann::json results;
};

// The run directory's default name under work_dirs/<name>/: local time, YYYYmmdd_HHMMSS.
std::string run_timestamp();

// A run's config as tools/train and tools/pretrain read it: `file` with the
// `overrides` applied, the plugins it and `plugins` name loaded first (they
// register components the config may name; each load logged), and `name`
// set to `default_name` when the config has none (it is kept in the saved
// config, so that re-running a run directory's config.toml gives the same name).
Config read_run_config(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                       const std::vector<std::filesystem::path>& plugins, const std::string& default_name);

// Creates `dir` and its parents; IoError naming it when that fails.
void create_run_dir(const std::filesystem::path& dir);

// Throws sscl::Error (ConfigError, DataError, RegistryError, ...) on bad input.
TrainOutcome run_training(const TrainArgs& args);

}  // namespace sscl
