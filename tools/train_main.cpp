// sscl_train: the binary behind tools/train. The only catch site: any error
// becomes one line on stderr and a non-zero exit.
#include <CLI/CLI.hpp>
#include <iostream>

#include "core/describe.h"
#include "core/error.h"
#include "core/plugins.h"
#include "core/stop_request.h"
#include "tools/launcher.h"
#include "tools/runner.h"

int main(int argc, char** argv) {
  CLI::App app{"Train a semi-supervised continual learning run from a TOML config."};
  sscl::TrainArgs args;
  std::string work_dir, resume, describe, list_kind, list_group;
  std::vector<std::string> plugins;
  bool list = false, markdown = false;
  int nproc = 1;
  app.add_option("config", args.config, "config file (TOML), e.g. configs/edgehml/edgehml_small_cnn_fmnist5.toml");
  app.add_option("--cfg-options", args.overrides, "overrides as key=value (dotted keys, TOML values)")->expected(1, -1);
  app.add_option("--work-dir", work_dir, "run directory (default work_dirs/<name>/<timestamp>)");
  app.add_option("--resume", resume,
                 "RUN_DIR: go on with that run from its newest checkpoint (its own config.toml; --cfg-options "
                 "may change it); auto: the newest unfinished run of CONFIG (or --work-dir) with a checkpoint, "
                 "or a new run when there is none");
  app.add_option("--nproc", nproc,
                 "start this many ranks on this machine (one per GPU, or CPU processes sharing the cores) and "
                 "train one distributed run with them")
      ->check(CLI::Range(1, 1024));
  app.add_option("--plugin", plugins, "a shared library of components to load first (repeatable)");
  app.add_flag("--list", list, "list every registered component with its one-line summary");
  app.add_option("--list-names", list_kind, "print the names of one kind (method, backbone, ...), one per line");
  app.add_option("--group", list_group, "with --list-names: only this group (e.g. continual)");
  auto* describe_option =
      app.add_option("--describe", describe, "print every config key (or those of NAME) with defaults and docs")
          ->expected(0, 1);
  app.add_flag("--markdown", markdown, "with --describe: Markdown tables (docs/keys.md)");
  CLI11_PARSE(app, argc, argv);
  try {
    // Plugins register before anything asks the registries.
    std::vector<std::filesystem::path> plugin_paths(plugins.begin(), plugins.end());
    if (list || !list_kind.empty() || describe_option->count() > 0) {
      for (auto& p : plugin_paths) p = std::filesystem::absolute(p);
      sscl::load_plugins(plugin_paths);
      if (list) sscl::list_components(std::cout);
      if (!list_kind.empty()) sscl::list_names(std::cout, list_kind, list_group);
      if (describe_option->count() > 0)
        sscl::describe_components(std::cout, markdown ? sscl::DescribeFormat::kMarkdown : sscl::DescribeFormat::kText,
                                  describe);
      return 0;
    }
    if (!resume.empty()) args.resume = resume;
    if (args.config.empty() && (resume.empty() || resume == "auto")) {
      std::cerr << "error: a config file is required (see --help)\n";
      return 2;
    }
    if (!work_dir.empty()) args.work_dir = work_dir;
    if (nproc > 1) {
      if (std::getenv("RANK") || std::getenv("WORLD_SIZE")) {
        std::cerr << "error: --nproc " << nproc << ": RANK / WORLD_SIZE are set already (a launcher started this "
                  << "process); leave out --nproc\n";
        return 2;
      }
      // The ranks get the same command line without --nproc.
      std::vector<std::string> rank_args;
      for (int i = 0; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--nproc") {
          ++i;
          continue;
        }
        if (a.rfind("--nproc=", 0) == 0) continue;
        rank_args.push_back(a);
      }
      return sscl::launch_local_ranks(nproc, rank_args, /*grace_s=*/10);
    }
    args.plugins = plugin_paths;
    // SIGINT / SIGTERM: finish the iteration, write a checkpoint, exit 128 + signal.
    sscl::install_stop_handlers();
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
