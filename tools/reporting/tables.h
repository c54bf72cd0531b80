// Paper tables from run records: one table per benchmark (dataset), one row per
// method configuration (runs that differ only by seed are averaged: mean ± sample
// standard deviation), as Markdown, CSV and LaTeX (booktabs). Runs that failed or
// are incomplete are listed under the tables and never averaged in.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tools/reporting/run_records.h"

namespace sscl::report {

struct Cell {
  double mean = 0, std = 0;
  int n = 0;  // runs with a value (a metric may be missing, e.g. forgetting of one task)
};

struct Column {
  std::string key;    // CSV header
  std::string title;  // Markdown / LaTeX header
  int decimals;
};

// The columns: task-IL and class-IL final accuracy, mean average accuracy,
// forgetting and BWT; ms/iter (median), seconds of training per task, peak RSS
// (MiB), buffer bytes (the method_stats "*bytes" figures held in RAM).
const std::vector<Column>& columns();

using Matrix = std::vector<std::vector<std::optional<double>>>;

struct Row {
  std::string dataset, label;  // label: the run name (method, backbone), plus the scenario trained for
  std::string method, scenario;
  std::vector<int64_t> seeds;
  std::vector<Cell> cells;  // one per column
  // For the plots, averaged over the seeds: accuracy[i][j] after task i on task j
  // (missing where not evaluated), and each task's median ms/iter.
  Matrix task_il, class_il;
  std::vector<double> task_ms;
};

// Finished runs grouped and averaged, sorted by dataset, then label.
std::vector<Row> aggregate(const std::vector<RunRecord>& runs);

std::string markdown(const std::vector<Row>& rows, const std::vector<RunRecord>& runs);
std::string csv(const std::vector<Row>& rows);
std::string latex(const std::vector<Row>& rows);

}  // namespace sscl::report
