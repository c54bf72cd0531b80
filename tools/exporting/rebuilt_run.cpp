#include "tools/exporting/rebuilt_run.h"

namespace sscl {

std::unique_ptr<RebuiltRun> rebuild_run(const std::filesystem::path& config_file, const std::string& default_name) {
  auto rebuilt = std::make_unique<RebuiltRun>(Config::load(config_file));
  // Read before finish(), which refuses keys nobody read.
  rebuilt->name = rebuilt->config.get_or<std::string>("name", default_name);
  rebuilt->run = RunBuilder(rebuilt->config)
                     .set_checkpoint_writer([](const std::string&, const CheckpointPosition&) { return std::string(); })
                     .finish();
  return rebuilt;
}

}  // namespace sscl
