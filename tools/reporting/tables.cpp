#include "tools/reporting/tables.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>

namespace sscl::report {

namespace {

using Json = nlohmann::json;

std::optional<double> number_at(const Json& j, const Json::json_pointer& at) {
  if (!j.contains(at)) return std::nullopt;
  const auto& v = j.at(at);
  if (!v.is_number()) return std::nullopt;
  return v.get<double>();
}

// RAM held by the method: method_stats figures named "*bytes", disk ones excluded.
std::optional<double> buffer_bytes(const Json& results) {
  if (!results.contains("method_stats")) return std::nullopt;
  double sum = 0;
  bool any = false;
  for (const auto& [key, value] : results["method_stats"].items()) {
    const bool bytes = key.size() >= 5 && key.compare(key.size() - 5, 5, "bytes") == 0;
    if (bytes && key.find("disk") == std::string::npos && value.is_number()) {
      sum += value.get<double>();
      any = true;
    }
  }
  return any ? std::optional<double>(sum) : std::nullopt;
}

std::optional<double> seconds_per_task(const Json& results) {
  const auto train = number_at(results, Json::json_pointer("/timing/train_s"));
  const auto tasks = number_at(results, Json::json_pointer("/num_tasks"));
  if (!train || !tasks || *tasks <= 0) return std::nullopt;
  return *train / *tasks;
}

using Extract = std::function<std::optional<double>(const Json&)>;

Extract at(const char* pointer) {
  const Json::json_pointer p(pointer);
  return [p](const Json& j) { return number_at(j, p); };
}

const std::vector<std::pair<Column, Extract>>& table() {
  static const std::vector<std::pair<Column, Extract>> t{
      {{"task_il_final", "task-IL final", 2}, at("/accuracy/task_il/final_average")},
      {{"class_il_final", "class-IL final", 2}, at("/accuracy/class_il/final_average")},
      {{"task_il_mean_average", "task-IL mean avg", 2}, at("/accuracy/task_il/mean_average")},
      {{"class_il_mean_average", "class-IL mean avg", 2}, at("/accuracy/class_il/mean_average")},
      {{"task_il_forgetting", "task-IL forgetting", 2}, at("/accuracy/task_il/forgetting")},
      {{"class_il_forgetting", "class-IL forgetting", 2}, at("/accuracy/class_il/forgetting")},
      {{"task_il_bwt", "task-IL BWT", 2}, at("/accuracy/task_il/bwt")},
      {{"class_il_bwt", "class-IL BWT", 2}, at("/accuracy/class_il/bwt")},
      {{"ms_per_iter", "ms/iter", 2}, at("/timing/ms_per_iter_median")},
      {{"seconds_per_task", "s/task", 1}, seconds_per_task},
      {{"peak_rss_mib", "peak RSS (MiB)", 0}, at("/memory/peak_rss_mib")},
      {{"buffer_bytes", "buffer bytes", 0}, buffer_bytes},
  };
  return t;
}

// The element-wise mean of the members' matrices at `pointer` (null cells skipped).
Matrix mean_matrix(const std::vector<const RunRecord*>& members, const Json::json_pointer& pointer) {
  Matrix out;
  std::vector<std::vector<int>> counts;
  for (const auto* m : members) {
    if (!m->results.contains(pointer)) continue;
    const auto& rows = m->results.at(pointer);
    for (size_t i = 0; i < rows.size(); ++i) {
      if (out.size() <= i) out.resize(i + 1), counts.resize(i + 1);
      for (size_t j = 0; j < rows[i].size(); ++j) {
        if (out[i].size() <= j) out[i].resize(j + 1), counts[i].resize(j + 1, 0);
        if (!rows[i][j].is_number()) continue;
        out[i][j] = out[i][j].value_or(0.0) + rows[i][j].get<double>();
        ++counts[i][j];
      }
    }
  }
  for (size_t i = 0; i < out.size(); ++i)
    for (size_t j = 0; j < out[i].size(); ++j)
      if (out[i][j]) *out[i][j] /= counts[i][j];
  return out;
}

std::vector<double> mean_task_ms(const std::vector<const RunRecord*>& members) {
  std::vector<double> sum;
  std::vector<int> count;
  for (const auto* m : members) {
    const Json::json_pointer p("/timing/tasks");
    if (!m->results.contains(p)) continue;
    const auto& tasks = m->results.at(p);
    for (size_t t = 0; t < tasks.size(); ++t) {
      if (!tasks[t].contains("ms_per_iter_median") || !tasks[t]["ms_per_iter_median"].is_number()) continue;
      if (sum.size() <= t) sum.resize(t + 1, 0), count.resize(t + 1, 0);
      sum[t] += tasks[t]["ms_per_iter_median"].get<double>();
      ++count[t];
    }
  }
  for (size_t t = 0; t < sum.size(); ++t) sum[t] /= std::max(count[t], 1);
  return sum;
}

Cell summarize(const std::vector<double>& values) {
  Cell c;
  c.n = static_cast<int>(values.size());
  if (c.n == 0) return c;
  for (double v : values) c.mean += v / c.n;
  if (c.n > 1) {
    double ss = 0;
    for (double v : values) ss += (v - c.mean) * (v - c.mean);
    c.std = std::sqrt(ss / (c.n - 1));  // sample standard deviation
  }
  return c;
}

std::string cell_text(const Cell& c, int decimals, const std::string& plus_minus) {
  if (c.n == 0) return "—";
  std::string out = fmt::format("{:.{}f}", c.mean, decimals);
  if (c.n > 1) out += fmt::format("{}{:.{}f}", plus_minus, c.std, decimals);
  return out;
}

std::string seeds_text(const std::vector<int64_t>& seeds) {
  std::string out;
  for (auto s : seeds) out += (out.empty() ? "" : " ") + std::to_string(s);
  return out;
}

std::string latex_escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '_' || ch == '&' || ch == '%' || ch == '#' || ch == '$' || ch == '{' || ch == '}') out += '\\';
    out += ch;
  }
  return out;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char ch : text) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

// Rows of each dataset, in order.
std::map<std::string, std::vector<const Row*>> by_dataset(const std::vector<Row>& rows) {
  std::map<std::string, std::vector<const Row*>> out;
  for (const auto& r : rows) out[r.dataset].push_back(&r);
  return out;
}

}  // namespace

const std::vector<Column>& columns() {
  static const std::vector<Column> cols = [] {
    std::vector<Column> c;
    for (const auto& entry : table()) c.push_back(entry.first);
    return c;
  }();
  return cols;
}

std::vector<Row> aggregate(const std::vector<RunRecord>& runs) {
  std::map<std::string, std::vector<const RunRecord*>> groups;
  for (const auto& r : runs)
    if (r.status == RunStatus::kFinished) groups[r.group].push_back(&r);
  std::vector<Row> rows;
  for (const auto& [group, members] : groups) {
    Row row;
    const RunRecord& first = *members.front();
    row.dataset = first.dataset;
    row.label = fmt::format("{} ({}, {}, {})", first.name, first.method, first.backbone, first.scenario);
    row.method = first.method;
    row.scenario = first.scenario;
    for (const auto* m : members) row.seeds.push_back(m->seed);
    std::sort(row.seeds.begin(), row.seeds.end());
    for (const auto& [column, extract] : table()) {
      std::vector<double> values;
      for (const auto* m : members)
        if (const auto v = extract(m->results)) values.push_back(*v);
      row.cells.push_back(summarize(values));
    }
    row.task_il = mean_matrix(members, Json::json_pointer("/accuracy/task_il/matrix"));
    row.class_il = mean_matrix(members, Json::json_pointer("/accuracy/class_il/matrix"));
    row.task_ms = mean_task_ms(members);
    rows.push_back(std::move(row));
  }
  std::sort(rows.begin(), rows.end(),
            [](const Row& a, const Row& b) { return std::tie(a.dataset, a.label) < std::tie(b.dataset, b.label); });
  return rows;
}

std::string markdown(const std::vector<Row>& rows, const std::vector<RunRecord>& runs) {
  std::string out;
  for (const auto& [dataset, members] : by_dataset(rows)) {
    out += fmt::format("### {}\n\n| run | seeds |", dataset);
    for (const auto& c : columns()) out += " " + c.title + " |";
    out += "\n| --- | --- |";
    for (size_t i = 0; i < columns().size(); ++i) out += " ---: |";
    out += "\n";
    for (const Row* r : members) {
      out += fmt::format("| {} | {} |", r->label, seeds_text(r->seeds));
      for (size_t i = 0; i < columns().size(); ++i)
        out += " " + cell_text(r->cells[i], columns()[i].decimals, " ± ") + " |";
      out += "\n";
    }
    out += "\n";
  }
  std::string left_out;
  for (const auto& r : runs)
    if (r.status != RunStatus::kFinished)
      left_out += fmt::format("- {} ({}): {}\n", r.dir.string(), to_string(r.status), r.reason);
  if (!left_out.empty()) out += "Not averaged in (failed or incomplete):\n\n" + left_out + "\n";
  out += "Mean ± sample standard deviation over the seeds listed; one seed: the value.\n";
  return out;
}

std::string csv(const std::vector<Row>& rows) {
  std::string out = "dataset,run,seeds";
  for (const auto& c : columns()) out += "," + c.key + "_mean," + c.key + "_std";
  out += "\n";
  for (const auto& r : rows) {
    out += csv_field(r.dataset) + "," + csv_field(r.label) + "," + seeds_text(r.seeds);
    for (size_t i = 0; i < columns().size(); ++i) {
      const Cell& c = r.cells[i];
      if (c.n == 0) {
        out += ",,";
      } else {
        out += fmt::format(",{:.6g},{}", c.mean, c.n > 1 ? fmt::format("{:.6g}", c.std) : std::string());
      }
    }
    out += "\n";
  }
  return out;
}

std::string latex(const std::vector<Row>& rows) {
  std::string out = "% Generated by tools/report; needs \\usepackage{booktabs}.\n";
  for (const auto& [dataset, members] : by_dataset(rows)) {
    out += "\\begin{table}[t]\n\\centering\n\\small\n";
    out += fmt::format("\\caption{{{}}}\n", latex_escape(dataset));
    out += "\\begin{tabular}{l" + std::string(columns().size(), 'r') + "}\n\\toprule\nRun";
    for (const auto& c : columns()) out += " & " + latex_escape(c.title);
    out += " \\\\\n\\midrule\n";
    for (const Row* r : members) {
      out += latex_escape(r->label);
      for (size_t i = 0; i < columns().size(); ++i) {
        std::string text = cell_text(r->cells[i], columns()[i].decimals, " \\pm ");
        out += " & " + (text == "—" ? std::string("--") : "$" + text + "$");
      }
      out += " \\\\\n";
    }
    out += "\\bottomrule\n\\end{tabular}\n\\end{table}\n";
  }
  return out;
}

}  // namespace sscl::report
