// tools/export: a finished run directory (config.toml + model.pt) to files a
// deployment reads. Today: TorchScript fp32 (model_fp32.pt, BatchNorm folded;
// tools/exporting/torchscript_export.h) and export.json beside it.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

namespace sscl {

struct ExportOptions {
  std::filesystem::path run_dir;
  std::filesystem::path out_dir;
  int64_t check_images = 256;  // test images the traced and eager logits are compared on
};

// Rebuilds the run's model from its config, loads model.pt, traces it, checks
// the traced logits against the eager model's on the run's test images (at
// batch 1 and at a batch of 64: refused above 1e-5 x max(1, largest
// |logit|)), then writes the files, each atomically, export.json last.
// Returns export.json's content. Throws IoError / ConfigError / Error naming
// the file or key; nothing is written to `out_dir` before every check passed.
nlohmann::json export_run(const ExportOptions& options);

}  // namespace sscl
