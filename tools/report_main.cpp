// tools/report: paper tables from run directories.
//   tools/report DIR... [--out OUT]
// Each DIR is a run directory or a folder of them (searched recursively); the
// edge-cloud sweeps of tools/infer (infer.json) found there are drawn too. Writes
// OUT/report.{md,csv,tex}, the plots (OUT/plots/*.png and *.svg) and OUT/report.html
// (everything in one file; default OUT: work_dirs/report), and prints the Markdown.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "tools/reporting/page.h"
#include "tools/reporting/tables.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  CLI::App app{"sscl report: tables from run directories"};
  std::vector<std::string> dirs;
  std::string out = "work_dirs/report";
  app.add_option("dirs", dirs, "run directories or folders of them")->required();
  app.add_option("--out", out, "where report.md, report.csv and report.tex go")->capture_default_str();
  bool log_ms = false;
  app.add_flag("--log-ms", log_ms, "ms/iter on a log scale in the accuracy-vs-ms/iter plots");
  CLI11_PARSE(app, argc, argv);
  try {
    std::vector<fs::path> roots;
    for (const auto& d : dirs) {
      if (!fs::is_directory(d)) throw std::runtime_error(d + ": no such directory");
      roots.emplace_back(d);
    }
    const auto runs = sscl::report::collect_runs(roots);
    const auto sweeps = sscl::report::collect_sweeps(roots);
    if (runs.empty() && sweeps.empty())
      throw std::runtime_error(
          "no run directory (a folder with config.toml) nor tools/infer sweep (infer.json) under the given paths");
    const auto rows = sscl::report::aggregate(runs);
    const auto md = sscl::report::markdown(rows, runs);
    fs::create_directories(out);
    sscl::write_file_atomic(fs::path(out) / "report.md", md);
    sscl::write_file_atomic(fs::path(out) / "report.csv", sscl::report::csv(rows));
    sscl::write_file_atomic(fs::path(out) / "report.tex", sscl::report::latex(rows));
    const auto plots = sscl::report::write_figures_and_page(rows, runs, out, sweeps, log_ms);
    std::fputs(md.c_str(), stdout);
    std::fprintf(stderr, "report of %zu run(s) written to %s: report.{md,csv,tex,html}, %zu plot file(s) in plots/\n",
                 runs.size(), out.c_str(), plots.size());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
