// Progress lines every `log.interval` iterations and the accuracy row after each
// evaluation, through the "trainer" logger (console and train.log).
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <chrono>
#include <numeric>

#include "core/hook_registry.h"
#include "core/logging.h"

namespace sscl {
namespace {

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds));
  return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
}

std::string format_row(const AccuracyMatrix& m, int row) {
  std::string out;
  for (int j = 0; j < m.num_tasks(); ++j)
    if (m.has(row, j)) out += fmt::format("{}{:.2f}", out.empty() ? "" : " ", m.at(row, j));
  return out;
}

class LoggerHook : public Hook {
 public:
  explicit LoggerHook(int64_t interval) : interval_(interval), log_(get_logger("trainer")) {}

  std::string hook_name() const override { return "logger"; }
  int priority() const override { return 90; }  // after hooks that change state

  void before_run(const RunState& s) override {
    start_ = std::chrono::steady_clock::now();
    log_->info("training {} task(s) x {} iterations (virtual epoch: {} iterations)", s.num_tasks, s.iters_per_task,
               s.iters_per_virtual_epoch);
  }

  void after_iter(const RunState& s) override {
    window_ms_ += s.last_timing.total_ms();
    window_data_ms_ += s.last_timing.data_ms;
    ++window_;
    if ((s.iter + 1) % interval_ != 0 && !s.is_last_iter_of_task()) return;
    std::string terms;
    for (const auto& [name, value] : s.losses)
      terms += fmt::format("{}{} {:.4f}", terms.empty() ? "" : ", ", name, value);
    const double ms = window_ms_ / window_;
    const int64_t done = s.global_iter + 1, total = int64_t{s.num_tasks} * s.iters_per_task;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    log_->info("task {}/{} iter {}/{} | lr {:.5f} | loss {:.4f} ({}) | {:.1f} ms/iter (data {:.1f}) | eta {}",
               s.task + 1, s.num_tasks, s.iter + 1, s.iters_per_task, s.lr, s.loss, terms, ms,
               window_data_ms_ / window_, format_duration(elapsed / done * (total - done)));
    window_ms_ = window_data_ms_ = 0;
    window_ = 0;
  }

  void after_val(const RunState& s) override {
    log_->info("after task {}: task-IL [{}] avg {:.2f} | class-IL [{}] avg {:.2f}", s.task + 1,
               format_row(s.task_il, s.task), s.task_il.average_accuracy(s.task), format_row(s.class_il, s.task),
               s.class_il.average_accuracy(s.task));
    if (s.task >= 0 && static_cast<size_t>(s.task) < s.state_fingerprints.size())
      log_->info("after task {}: the model, method state and labeled sets are the same on every rank (fingerprint {})",
                 s.task + 1, s.state_fingerprints[static_cast<size_t>(s.task)]);
  }

 private:
  int64_t interval_;
  std::shared_ptr<spdlog::logger> log_;
  std::chrono::steady_clock::time_point start_;
  double window_ms_ = 0, window_data_ms_ = 0;
  int64_t window_ = 0;
};

SSCL_REGISTER_OPTIONS(HookRegistry, "logger", "progress lines every log.interval iterations and the accuracy rows",
                      LogIntervalOptions{}, [](const LogIntervalOptions& o, const HookContext&) {
                        return std::make_shared<LoggerHook>(o.interval);
                      });

}  // namespace
}  // namespace sscl
