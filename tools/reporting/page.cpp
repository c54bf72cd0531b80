#include "tools/reporting/page.h"

#include <fmt/format.h>

#include <map>

#include "core/atomic_file.h"
#include "tools/reporting/plots.h"

namespace sscl::report {

namespace fs = std::filesystem;

namespace {

std::string slug(const std::string& text) {
  std::string out;
  for (char ch : text) {
    const bool keep = std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '+';
    if (keep)
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    else if (!out.empty() && out.back() != '_')
      out += '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '<')
      out += "&lt;";
    else if (ch == '>')
      out += "&gt;";
    else if (ch == '&')
      out += "&amp;";
    else
      out += ch;
  }
  return out;
}

size_t column_index(const std::string& key) {
  for (size_t i = 0; i < columns().size(); ++i)
    if (columns()[i].key == key) return i;
  return 0;
}

// Accuracy on task j after each task i >= j: one series per task.
std::vector<Series> curves(const Matrix& m) {
  std::vector<Series> out;
  const size_t tasks = m.empty() ? 0 : m.back().size();
  for (size_t j = 0; j < tasks; ++j) {
    Series s{fmt::format("task {}", j), {}};
    for (size_t i = 0; i < m.size(); ++i)
      if (j < m[i].size() && m[i][j]) s.points.emplace_back(static_cast<double>(i), *m[i][j]);
    if (!s.points.empty()) out.push_back(s);
  }
  return out;
}

std::vector<std::string> task_labels(size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(std::to_string(i));
  return out;
}

struct Figure {
  std::string caption;
  Canvas canvas;
  std::string file_stem;
};

// How plots name row k of a table: its number there, method and scenario.
std::string legend_name(size_t k, const Row& r) { return fmt::format("{} {} {}", k, r.method, r.scenario); }

std::string table_html(const std::vector<const Row*>& rows) {
  std::string out = "<table>\n<tr><th>#</th><th>run</th><th>seeds</th>";
  for (const auto& c : columns()) out += "<th>" + html_escape(c.title) + "</th>";
  out += "</tr>\n";
  for (size_t k = 0; k < rows.size(); ++k) {
    const Row* r = rows[k];
    std::string seeds;
    for (auto s : r->seeds) seeds += (seeds.empty() ? "" : " ") + std::to_string(s);
    out += "<tr><td>" + std::to_string(k) + "</td><td>" + html_escape(r->label) + "</td><td>" + seeds + "</td>";
    for (size_t i = 0; i < columns().size(); ++i) {
      const Cell& c = r->cells[i];
      std::string text = c.n == 0 ? "—" : fmt::format("{:.{}f}", c.mean, columns()[i].decimals);
      if (c.n > 1) text += fmt::format(" ± {:.{}f}", c.std, columns()[i].decimals);
      out += "<td class=\"num\">" + text + "</td>";
    }
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

}  // namespace

Canvas route_sweep_chart(const std::vector<Series>& sweeps) {
  return line_chart("Edge-cloud: accuracy against images uploaded", "uploaded (%)", "accuracy (%)", sweeps);
}

std::vector<fs::path> write_figures_and_page(const std::vector<Row>& rows, const std::vector<RunRecord>& runs,
                                             const fs::path& out, const std::vector<SweepRecord>& sweeps, bool log_ms) {
  std::map<std::string, std::vector<const Row*>> by_dataset;
  for (const auto& r : rows) by_dataset[r.dataset].push_back(&r);
  const size_t ms = column_index("ms_per_iter");
  const size_t til = column_index("task_il_final"), cil = column_index("class_il_final");

  std::string body;
  std::vector<fs::path> written;
  fs::create_directories(out / "plots");
  auto emit = [&](const Figure& f) {
    const fs::path svg = out / "plots" / (f.file_stem + ".svg"), png = out / "plots" / (f.file_stem + ".png"),
                   tex = out / "plots" / (f.file_stem + ".tex");
    const std::string text = to_svg(f.canvas);
    write_file_atomic(svg, text);
    write_png(f.canvas, png);
    write_file_atomic(tex, f.canvas.pgfplots);
    written.push_back(png);
    written.push_back(svg);
    written.push_back(tex);
    body += "<figure>" + text + "<figcaption>" + html_escape(f.caption) + "</figcaption></figure>\n";
  };

  for (const auto& [dataset, members] : by_dataset) {
    body += "<h2>" + html_escape(dataset) + "</h2>\n" + table_html(members);
    for (const auto& [scenario, column] : {std::pair{"task-IL", til}, std::pair{"class-IL", cil}}) {
      std::vector<Series> points;
      for (size_t k = 0; k < members.size(); ++k) {
        const Row* r = members[k];
        // Error bars: the sample std over seeds, where there are several.
        const Cell &x = r->cells[ms], &y = r->cells[column];
        if (x.n > 0 && y.n > 0)
          points.push_back({legend_name(k, *r), {{x.mean, y.mean}}, {x.n > 1 ? x.std : 0.0}, {y.n > 1 ? y.std : 0.0}});
      }
      emit({fmt::format("{}: {} final accuracy against median ms/iter", dataset, scenario),
            scatter_chart(fmt::format("{} final accuracy vs ms/iter", scenario),
                          log_ms ? "ms/iter (log scale)" : "ms/iter", "accuracy (%)", points, log_ms),
            fmt::format("{}_{}_accuracy_vs_ms", slug(dataset), slug(scenario))});
    }
    std::vector<Series> per_task;
    size_t tasks = 0;
    for (size_t k = 0; k < members.size(); ++k) {
      const Row* r = members[k];
      Series s{legend_name(k, *r), {}};
      for (size_t t = 0; t < r->task_ms.size(); ++t) s.points.emplace_back(static_cast<double>(t), r->task_ms[t]);
      tasks = std::max(tasks, r->task_ms.size());
      per_task.push_back(s);
    }
    emit({fmt::format("{}: median ms/iter of each task", dataset),
          line_chart("ms/iter per task", "task", "ms/iter", per_task, task_labels(tasks)),
          fmt::format("{}_ms_per_task", slug(dataset))});
    for (size_t k = 0; k < members.size(); ++k) {
      const Row& r = *members[k];
      const std::string stem = fmt::format("{}_{:02d}_{}", slug(dataset), k, slug(r.label));
      for (const auto& [scenario, matrix] : {std::pair{"task-IL", &r.task_il}, std::pair{"class-IL", &r.class_il}}) {
        if (matrix->empty()) continue;
        emit({fmt::format("{}: {} accuracy on each task after each task", r.label, scenario),
              line_chart(fmt::format("{} accuracy per task", scenario), "after task", "accuracy (%)", curves(*matrix),
                         task_labels(matrix->size())),
              fmt::format("{}_{}_curves", stem, slug(scenario))});
        emit({fmt::format("{}: {} accuracy matrix (row: after task i, column: task j)", r.label, scenario),
              heatmap(fmt::format("{} accuracy matrix", scenario), *matrix),
              fmt::format("{}_{}_matrix", stem, slug(scenario))});
      }
    }
  }
  if (!sweeps.empty()) {
    std::vector<Series> lines;
    std::string files;
    for (const auto& sweep : sweeps) {
      lines.push_back({sweep.label, sweep.points});
      files += "<li>" + html_escape(sweep.file.string()) + "</li>\n";
    }
    body += "<h2>Edge-cloud collaborative inference</h2>\n<ul>\n" + files + "</ul>\n";
    emit({"tools/infer's threshold sweeps: accuracy against the share of test images uploaded to the cloud model",
          route_sweep_chart(lines), "edge_cloud_route_sweep"});
  }
  std::string left_out;
  for (const auto& r : runs)
    if (r.status != RunStatus::kFinished)
      left_out +=
          "<li>" + html_escape(r.dir.string()) + " (" + to_string(r.status) + "): " + html_escape(r.reason) + "</li>\n";
  if (!left_out.empty()) body += "<h2>Not averaged in (failed or incomplete)</h2>\n<ul>\n" + left_out + "</ul>\n";

  const std::string page =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sscl report</title>\n<style>"
      "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
      "td,th{border:1px solid #ccc;padding:3px 6px}td.num{text-align:right}"
      "figure{display:inline-block;margin:1em}</style></head><body>\n<h1>sscl report</h1>\n"
      "<p>Mean ± sample standard deviation over the seeds listed; one seed: the value.</p>\n" +
      body + "</body></html>\n";
  write_file_atomic(out / "report.html", page);
  return written;
}

}  // namespace sscl::report
