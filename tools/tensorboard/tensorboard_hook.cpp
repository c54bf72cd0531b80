// log.tensorboard = true (or log.hooks = ["tensorboard"]): RUN_DIR/tb/
// events.out.tfevents.* for TensorBoard. At every log interval (the steps and
// windows of metrics.jsonl): each loss term, the learning rate, ms/iter and its
// parts, the method's figures (mask rates, buffer sizes: Method::all_stats). After
// every evaluation: the task-IL and class-IL accuracy of every task seen, their
// averages, and both accuracy matrices as images. At the start: the resolved
// config as text. Steps are global iterations. A resumed run cuts the file back
// to its checkpoint's size and appends, so no step appears twice. Rank 0 only.
#include <spdlog/fmt/fmt.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "core/hook_registry.h"
#include "core/method.h"
#include "core/metrics.h"
#include "tools/tensorboard/event_file.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;

// The accuracy matrix as a heatmap: row i (after task i+1) by column j (on
// task j+1), each cell coloured by its accuracy (viridis, 0 to 100 %) and
// labelled with it; cells not evaluated are gray.
cv::Mat accuracy_heatmap(const AccuracyMatrix& m, int last_row) {
  constexpr int kCell = 48;
  const int n = m.num_tasks();
  cv::Mat image(n * kCell, n * kCell, CV_8UC3, cv::Scalar(200, 200, 200));
  for (int i = 0; i <= last_row && i < n; ++i)
    for (int j = 0; j < n; ++j) {
      if (!m.has(i, j)) continue;
      const double acc = m.at(i, j);
      cv::Mat level(1, 1, CV_8UC1, cv::Scalar(static_cast<int>(std::clamp(acc, 0.0, 100.0) * 2.55)));
      cv::Mat colour;
      cv::applyColorMap(level, colour, cv::COLORMAP_VIRIDIS);
      const cv::Rect cell(j * kCell, i * kCell, kCell, kCell);
      image(cell).setTo(colour.at<cv::Vec3b>(0, 0));
      const cv::Scalar ink = acc > 60 ? cv::Scalar(0, 0, 0) : cv::Scalar(255, 255, 255);
      cv::putText(image, fmt::format("{:.0f}", acc), {j * kCell + 8, i * kCell + 30}, cv::FONT_HERSHEY_SIMPLEX, 0.5,
                  ink, 1, cv::LINE_AA);
    }
  return image;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class TensorBoardHook : public Hook {
 public:
  // `dir` empty: a rank but 0 of a distributed run, which writes nothing.
  TensorBoardHook(fs::path run_dir, int64_t interval, const Method* method)
      : run_dir_(std::move(run_dir)), interval_(interval), method_(method) {}

  std::string hook_name() const override { return "tensorboard"; }
  int priority() const override { return 90; }

  void before_run(const RunState&) override {
    if (run_dir_.empty()) return;
    const bool fresh = file().empty() || !fs::exists(file()) || fs::file_size(file()) == 0;
    writer_.emplace(file());
    // Markdown: a code block keeps the TOML's layout.
    if (fresh) writer_->text(0, "config", "```\n" + read_text(run_dir_ / "config.toml") + "```");
  }

  void after_iter(const RunState& s) override {
    const IterationTiming& t = s.last_timing;
    window_.data_ms += t.data_ms;
    window_.forward_ms += t.forward_ms;
    window_.backward_ms += t.backward_ms;
    window_.other_ms += t.other_ms;
    window_.comm_ms += t.comm_ms;
    ++window_count_;
    if ((s.iter + 1) % interval_ != 0 && !s.is_last_iter_of_task()) return;
    const double n = static_cast<double>(window_count_);
    std::vector<std::pair<std::string, double>> values{{"train/loss", s.loss}, {"train/lr", s.lr}};
    for (const auto& [name, value] : s.losses) values.emplace_back("train/loss/" + name, value);
    values.emplace_back("time/ms_per_iter", window_.total_ms() / n);
    values.emplace_back("time/data_ms_per_iter", window_.data_ms / n);
    values.emplace_back("time/forward_ms_per_iter", window_.forward_ms / n);
    values.emplace_back("time/backward_ms_per_iter", window_.backward_ms / n);
    values.emplace_back("time/other_ms_per_iter", window_.other_ms / n);
    values.emplace_back("time/comm_ms_per_iter", window_.comm_ms / n);
    if (s.amp_loss_scale > 0) values.emplace_back("train/amp_loss_scale", s.amp_loss_scale);
    if (method_)
      for (const auto& [name, value] : method_->all_stats()) values.emplace_back("method/" + name, value);
    if (writer_) writer_->scalars(s.global_iter + 1, values);
    window_ = {};
    window_count_ = 0;
  }

  void after_val(const RunState& s) override {
    if (!writer_) return;
    std::vector<std::pair<std::string, double>> values;
    for (const auto& [scenario, m] : {std::pair<std::string, const AccuracyMatrix*>{"task_il", &s.task_il},
                                      std::pair<std::string, const AccuracyMatrix*>{"class_il", &s.class_il}}) {
      for (int j = 0; j < m->num_tasks(); ++j)
        if (m->has(s.task, j)) values.emplace_back(fmt::format("{}/task_{}", scenario, j + 1), m->at(s.task, j));
      values.emplace_back(scenario + "/average", m->average_accuracy(s.task));
    }
    writer_->scalars(s.global_iter, values);
    writer_->image(s.global_iter, "accuracy_matrix/task_il", accuracy_heatmap(s.task_il, s.task));
    writer_->image(s.global_iter, "accuracy_matrix/class_il", accuracy_heatmap(s.class_il, s.task));
  }

  // As metrics.jsonl: the checkpoint records the file's size, and a resumed run
  // cuts what was written after it.
  void visit_state(StateVisitor& v) override {
    std::error_code ec;
    auto bytes = static_cast<int64_t>(file().empty() ? 0 : fs::file_size(file(), ec));
    if (ec) bytes = 0;
    v("bytes", bytes);
    if (!v.loading() || file().empty()) return;
    const bool open = writer_.has_value();
    writer_.reset();
    if (fs::exists(file()) && fs::file_size(file()) > static_cast<uintmax_t>(bytes))
      fs::resize_file(file(), static_cast<uintmax_t>(bytes), ec);
    if (ec) throw IoError(file().string() + ": cannot cut back to the checkpoint's size: " + ec.message());
    if (open) writer_.emplace(file());
  }

 private:
  // The run's one event file: the one RUN_DIR/tb holds, or a new name.
  const fs::path& file() {
    if (!file_.empty() || run_dir_.empty()) return file_;
    std::error_code ec;
    for (fs::directory_iterator it(run_dir_ / "tb", ec), end; !ec && it != end; it.increment(ec))
      if (it->path().filename().string().rfind("events.out.tfevents.", 0) == 0) file_ = it->path();
    if (file_.empty()) {
      const auto seconds =
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
      file_ = run_dir_ / "tb" / ("events.out.tfevents." + std::to_string(seconds) + ".sscl");
    }
    return file_;
  }

  fs::path run_dir_, file_;
  int64_t interval_;
  const Method* method_;
  std::optional<EventFileWriter> writer_;
  IterationTiming window_;
  int64_t window_count_ = 0;
};

SSCL_REGISTER_OPTIONS(HookRegistry, "tensorboard",
                      "RUN_DIR/tb/events.out.tfevents.*: scalars per log interval, accuracies and matrices per "
                      "evaluation, the config (log.tensorboard = true)",
                      LogIntervalOptions{}, [](const LogIntervalOptions& o, const HookContext& context) {
                        return std::make_shared<TensorBoardHook>(context.main_process ? context.run_dir : fs::path(),
                                                                 o.interval, context.method);
                      });

}  // namespace
}  // namespace sscl
