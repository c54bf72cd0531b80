// sscl_train: the binary behind tools/train. The only catch site: any error
// becomes one line on stderr and a non-zero exit.
#include <CLI/CLI.hpp>
#include <iostream>

#include "core/error.h"
#include "core/hook_registry.h"
#include "core/method.h"
#include "core/stop_request.h"
#include "datasets/image_dataset.h"
#include "tools/runner.h"

namespace {

void print_registries() {
  auto print = [](const std::string& kind, const std::vector<std::string>& names) {
    std::cout << kind << ":";
    for (const auto& n : names) std::cout << " " << n;
    std::cout << "\n";
  };
  print("methods", sscl::MethodRegistry::get().names());
  print("semi-supervised losses (method.semi)", sscl::SemiLossRegistry::get().names());
  print("backbones", sscl::BackboneRegistry::get().names());
  print("datasets", sscl::DatasetRegistry::get().names());
  print("hooks", sscl::HookRegistry::get().names());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train a semi-supervised continual learning run from a TOML config."};
  sscl::TrainArgs args;
  std::string work_dir;
  bool list = false;
  app.add_option("config", args.config, "config file (TOML), e.g. configs/fixmatch/fixmatch_small_cnn_fmnist5.toml");
  app.add_option("--cfg-options", args.overrides, "overrides as key=value (dotted keys, TOML values)")->expected(1, -1);
  app.add_option("--work-dir", work_dir, "run directory (default work_dirs/<name>/<timestamp>)");
  std::string resume;
  app.add_option("--resume", resume,
                 "RUN_DIR: go on with that run from its newest checkpoint (its own config.toml; --cfg-options "
                 "may change it); auto: the newest unfinished run of CONFIG (or --work-dir) with a checkpoint, "
                 "or a new run when there is none");
  app.add_flag("--list", list, "list the registered methods, semi-supervised losses, backbones, datasets and hooks");
  CLI11_PARSE(app, argc, argv);
  if (list) {
    print_registries();
    return 0;
  }
  if (!resume.empty()) args.resume = resume;
  if (args.config.empty() && (resume.empty() || resume == "auto")) {
    std::cerr << "error: a config file is required (see --help)\n";
    return 2;
  }
  if (!work_dir.empty()) args.work_dir = work_dir;
  // SIGINT / SIGTERM: finish the iteration, write a checkpoint, exit 128 + signal.
  sscl::install_stop_handlers();
  try {
    sscl::run_training(args);
    return 0;
  } catch (const sscl::Interrupted& e) {
    std::cerr << "interrupted: " << e.what() << "\n";
    return 128 + e.signal();
  } catch (const sscl::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: unexpected: " << e.what() << "\n";
  }
  return 1;
}
