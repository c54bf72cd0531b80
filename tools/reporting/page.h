// The report's figures and its single HTML page.
#pragma once

#include <filesystem>
#include <vector>

#include "tools/reporting/plots.h"
#include "tools/reporting/run_records.h"
#include "tools/reporting/tables.h"

namespace sscl::report {

// Accuracy against the share of images uploaded, a line per sweep (tools/infer
// draws its own sweep with it, tools/report every sweep it finds).
Canvas route_sweep_chart(const std::vector<Series>& sweeps);

// Writes, under `out` (each plot as PNG, SVG and pgfplots .tex):
//   plots/<dataset>_{task_il,class_il}_accuracy_vs_ms  final accuracy against ms/iter, one point per row, with
//       the std over seeds as error bars; ms/iter on a log scale with `log_ms`;
//   plots/<dataset>_ms_per_task  each row's median ms/iter on each task;
//   plots/<row>_{task_il,class_il}_{curves,matrix}  accuracy on each task after each task, and the matrix;
//   plots/edge_cloud_route_sweep  with `sweeps`: accuracy against images uploaded, one line per sweep;
//   report.html  the tables and every plot (inline SVG): one file a browser opens offline.
// Returns the plot files written.
std::vector<std::filesystem::path> write_figures_and_page(const std::vector<Row>& rows,
                                                          const std::vector<RunRecord>& runs,
                                                          const std::filesystem::path& out,
                                                          const std::vector<SweepRecord>& sweeps = {},
                                                          bool log_ms = false);

}  // namespace sscl::report
