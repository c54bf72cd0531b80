// A run rebuilt from its config.toml as it was built for training (data, model,
// method), without a run directory: what tools/export traces and what
// tools/infer takes its test images from.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/config.h"
#include "core/run_builder.h"

namespace sscl {

struct RebuiltRun {
  explicit RebuiltRun(Config loaded) : config(std::move(loaded)) {}
  Config config;  // the run's sections view it: it lives as long as `run`
  std::string name;
  std::unique_ptr<Run> run;
};

// ConfigError / IoError naming `config_file` or the key. `default_name`: the
// run's name when the config has no "name" key.
std::unique_ptr<RebuiltRun> rebuild_run(const std::filesystem::path& config_file, const std::string& default_name);

}  // namespace sscl
