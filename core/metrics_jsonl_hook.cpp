// metrics.jsonl in the run directory: one JSON object per logging interval
// ("type": "train") and per evaluation ("type": "eval"), flushed line by line so a
// crashed run keeps everything up to its last line.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/hook_registry.h"

namespace sscl {
namespace {

nlohmann::json row_json(const AccuracyMatrix& m, int row) {
  auto out = nlohmann::json::array();
  for (int j = 0; j < m.num_tasks(); ++j) out.push_back(m.has(row, j) ? nlohmann::json(m.at(row, j)) : nullptr);
  return out;
}

class MetricsJsonlHook : public Hook {
 public:
  // The file is opened when the run starts: building the hook writes nothing.
  MetricsJsonlHook(std::filesystem::path file, int64_t interval) : interval_(interval), path_(std::move(file)) {}

  std::string hook_name() const override { return "metrics_jsonl"; }
  int priority() const override { return 90; }

  void before_run(const RunState&) override {
    if (path_.empty()) return;  // a rank but 0 of a distributed run
    out_.open(path_, std::ios::app);
    if (!out_) throw IoError(path_.string() + ": cannot open for writing");
  }

  void after_iter(const RunState& s) override {
    window_ms_ += s.last_timing.total_ms();
    window_data_ms_ += s.last_timing.data_ms;
    ++window_;
    if ((s.iter + 1) % interval_ != 0 && !s.is_last_iter_of_task()) return;
    nlohmann::json j{{"type", "train"}, {"task", s.task}, {"iter", s.iter + 1}, {"global_iter", s.global_iter + 1},
                     {"lr", s.lr},      {"loss", s.loss}};
    for (const auto& [name, value] : s.losses) j["losses"][name] = value;
    j["ms_per_iter"] = window_ms_ / window_;
    j["data_ms_per_iter"] = window_data_ms_ / window_;
    write(j);
    window_ms_ = window_data_ms_ = 0;
    window_ = 0;
  }

  void after_val(const RunState& s) override {
    write({{"type", "eval"},
           {"task", s.task},
           {"task_il", row_json(s.task_il, s.task)},
           {"class_il", row_json(s.class_il, s.task)},
           {"task_il_average", s.task_il.average_accuracy(s.task)},
           {"class_il_average", s.class_il.average_accuracy(s.task)}});
  }

  // A resumed run cuts the lines written after its checkpoint, so that every
  // iteration and evaluation appears once.
  void visit_state(StateVisitor& s) override {
    auto bytes = static_cast<int64_t>(written_bytes());
    s("bytes", bytes);
    if (s.loading()) cut_to(static_cast<std::uintmax_t>(bytes));
  }

 private:
  void cut_to(std::uintmax_t keep) {
    if (path_.empty()) return;
    out_.close();
    std::error_code ec;
    if (std::filesystem::file_size(path_, ec) > keep && !ec) std::filesystem::resize_file(path_, keep, ec);
    if (ec)
      throw IoError(path_.string() + ": cannot cut back to the checkpoint's " + std::to_string(keep) +
                    " bytes: " + ec.message());
    out_.open(path_, std::ios::app);
    if (!out_) throw IoError(path_.string() + ": cannot open for writing");
  }

  std::uintmax_t written_bytes() const {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path_, ec);
    return ec ? 0 : size;
  }

  void write(const nlohmann::json& j) {
    if (path_.empty()) return;
    out_ << j.dump() << '\n';
    out_.flush();
    if (!out_) throw IoError(path_.string() + ": write failed");
  }

  int64_t interval_;
  std::filesystem::path path_;
  std::ofstream out_;
  double window_ms_ = 0, window_data_ms_ = 0;
  int64_t window_ = 0;
};

SSCL_REGISTER_OPTIONS(HookRegistry, "metrics_jsonl",
                      "RUN_DIR/metrics.jsonl: a JSON line per log interval and per evaluation (every run has it)",
                      LogIntervalOptions{}, [](const LogIntervalOptions& o, const HookContext& context) {
                        return std::make_shared<MetricsJsonlHook>(
                            context.main_process ? context.run_dir / "metrics.jsonl" : std::filesystem::path(),
                            o.interval);
                      });

}  // namespace
}  // namespace sscl
