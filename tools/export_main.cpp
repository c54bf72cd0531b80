// sscl_export: the binary behind tools/export. A finished run directory to a
// TorchScript model (BatchNorm folded) and export.json; see
// tools/exporting/export_run.h and docs/export.md.
//
//   tools/export RUN_DIR --out DIR
#include <CLI/CLI.hpp>
#include <iostream>

#include "core/logging.h"
#include "tools/exporting/export_run.h"
#include "tools/tool_main.h"

int main(int argc, char** argv) {
  CLI::App app{"Export a finished sscl run's model for inference (TorchScript, BatchNorm folded)."};
  sscl::ExportOptions options;
  std::string run_dir, out_dir;
  app.add_option("run_dir", run_dir, "a finished run directory (config.toml and model.pt)")->required();
  app.add_option("--out", out_dir, "directory for model_fp32.pt and export.json")->required();
  app.add_option("--check-images", options.check_images, "test images the export is checked on")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  return sscl::run_tool_main([&] {
    options.run_dir = run_dir;
    options.out_dir = out_dir;
    const auto info = sscl::export_run(options);
    const auto& file = info["files"][0];
    std::cout << "exported " << info["method"].get<std::string>() << " (" << info["backbone"].get<std::string>() << ", "
              << info["num_classes"].get<int64_t>() << " classes) to " << out_dir
              << "/model_fp32.pt: " << file["bytes"].get<int64_t>() << " bytes, "
              << file["batch_norms_folded"].get<int64_t>() << " BatchNorm folded, "
              << file["batch_norms_kept"].get<int64_t>() << " kept; max |logit difference| "
              << file["check"]["max_abs_logit_difference_batch_64"].get<double>() << " against the eager model on "
              << file["check"]["images"].get<int64_t>() << " test images\n";
    if (info.contains("prediction_note")) std::cout << "note: " << info["prediction_note"].get<std::string>() << "\n";
    return 0;
  });
}
