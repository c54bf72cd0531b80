// sscl_pretrain: the binary behind tools/pretrain. SimSiam on a config's
// training images (labels unused), writing a model.pt that model.pretrained
// reads; see tools/pretraining/pretrain_run.h and docs/pretrained.md.
//
//   tools/pretrain CONFIG [--work-dir DIR] [--cfg-options key=value ...] [--plugin LIB]
#include <CLI/CLI.hpp>
#include <iostream>

#include "tools/pretraining/pretrain_run.h"
#include "tools/tool_main.h"

int main(int argc, char** argv) {
  CLI::App app{"Pretrain a config's backbone with SimSiam on its dataset's images, without their labels."};
  sscl::PretrainArgs args;
  std::string work_dir;
  std::vector<std::string> plugins;
  app.add_option("config", args.config, "a training config (TOML); its [pretrain] section says how")->required();
  app.add_option("--cfg-options", args.overrides, "overrides as key=value (dotted keys, TOML values)")->expected(1, -1);
  app.add_option("--work-dir", work_dir, "output directory (default work_dirs/<name>/pretrain_<timestamp>)");
  app.add_option("--plugin", plugins, "a shared library of components to load first (repeatable)");
  CLI11_PARSE(app, argc, argv);
  return sscl::run_tool_main([&] {
    if (!work_dir.empty()) args.work_dir = work_dir;
    args.plugins.assign(plugins.begin(), plugins.end());
    const auto results = sscl::run_pretraining(args);
    std::cout << "pretrained " << results.results["backbone"].get<std::string>() << " with SimSiam on "
              << results.results["pool_images"].get<int64_t>() << " images: loss "
              << results.results["loss"]["first"].get<double>() << " -> "
              << results.results["loss"]["last"].get<double>() << "; weights in "
              << (results.run_dir / "model.pt").string() << "\n";
    return 0;
  });
}
