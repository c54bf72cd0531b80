#include "core/checkpoint.h"

#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/serialize/archive.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"

namespace sscl {

namespace fs = std::filesystem;
using nlohmann::json;

void CheckpointOptions::declare(OptionSpec<CheckpointOptions>& o) {
  o.key("enabled", &CheckpointOptions::enabled, "write checkpoints (task ends, every interval, on SIGINT/SIGTERM)");
  o.key("interval", &CheckpointOptions::interval, "also every N iterations (global count); 0: only at task ends")
      .min(0);
  o.key("keep_last", &CheckpointOptions::keep_last, "checkpoint files kept in RUN_DIR/checkpoints").min(1);
}

CheckpointDir::CheckpointDir(fs::path run_dir, int keep_last) : dir_(run_dir / "checkpoints"), keep_last_(keep_last) {}

void CheckpointDir::prepare() const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw IoError(dir_.string() + ": cannot create the checkpoint folder: " + ec.message());
  write_file_atomic(dir_ / ".write_probe", "ok\n");  // throws IoError naming the folder
  fs::remove(dir_ / ".write_probe", ec);
}

namespace {

// ckpt_000001200.pt and ckpt_000001200_task_end.pt.
std::string file_name(const CheckpointPosition& p) {
  std::ostringstream name;
  name << "ckpt_" << std::setw(9) << std::setfill('0') << p.global_iter << (p.evaluated ? "_task_end" : "") << ".pt";
  return name.str();
}

bool is_checkpoint_name(const std::string& name) {
  return name.rfind("ckpt_", 0) == 0 && name.size() > 8 && name.compare(name.size() - 3, 3, ".pt") == 0;
}

json matrix_json(const AccuracyMatrix& m) {
  json rows = json::array();
  for (const auto& row : m.rows()) {
    json r = json::array();
    for (double v : row) r.push_back(std::isnan(v) ? json(nullptr) : json(v));
    rows.push_back(r);
  }
  return rows;
}

AccuracyMatrix matrix_from(const json& rows) {
  AccuracyMatrix m(static_cast<int>(rows.size()));
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i].size(); ++j)
      if (!rows[i][j].is_null()) m.set(static_cast<int>(i), static_cast<int>(j), rows[i][j].get<double>());
  return m;
}

json timing_json(const IterationTiming& t) {
  return {{"data_ms", t.data_ms},
          {"forward_ms", t.forward_ms},
          {"backward_ms", t.backward_ms},
          {"other_ms", t.other_ms},
          {"comm_ms", t.comm_ms}};
}

IterationTiming timing_from(const json& j) {
  IterationTiming t;
  t.data_ms = j.at("data_ms");
  t.forward_ms = j.at("forward_ms");
  t.backward_ms = j.at("backward_ms");
  t.comm_ms = j.value("comm_ms", 0.0);
  t.other_ms = j.at("other_ms");
  return t;
}

}  // namespace

fs::path CheckpointDir::write(const std::string& bytes, const CheckpointPosition& position) const {
  const fs::path file = dir_ / file_name(position);
  write_file_atomic(file, bytes);
  const auto files = list();
  for (size_t i = static_cast<size_t>(keep_last_); i < files.size(); ++i) {
    std::error_code ignored;  // a file we cannot delete costs space, not correctness
    fs::remove(files[i], ignored);
  }
  return file;
}

std::vector<fs::path> CheckpointDir::list() const {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file() && is_checkpoint_name(it->path().filename().string())) files.push_back(it->path());
  // At one global iteration a task-end file is the older: a mid-task file of the
  // same count is only written by a stop at the start of the next task.
  const auto age = [](const fs::path& file) {
    const std::string name = file.filename().string();
    const bool task_end = name.find("_task_end") != std::string::npos;
    return std::make_pair(std::strtoll(name.c_str() + 5, nullptr, 10), task_end ? 0 : 1);
  };
  std::sort(files.begin(), files.end(), [&](const fs::path& a, const fs::path& b) { return age(a) > age(b); });
  return files;
}

std::string run_state_to_json(const RunState& s) {
  json losses = json::array();
  for (const auto& [name, value] : s.losses) losses.push_back({name, value});
  json timings = json::array();
  for (const auto& t : s.task_timings)
    timings.push_back(
        {{"iteration_ms", t.iteration_ms}, {"sum", timing_json(t.sum)}, {"train_s", t.train_s}, {"eval_s", t.eval_s}});
  const json j{{"num_tasks", s.num_tasks},
               {"iters_per_task", s.iters_per_task},
               {"iters_per_virtual_epoch", s.iters_per_virtual_epoch},
               {"task", s.task},
               {"iter", s.iter},
               {"epoch", s.epoch},
               {"global_iter", s.global_iter},
               {"lr", s.lr},
               {"losses", losses},
               {"loss", std::isfinite(s.loss) ? json(s.loss) : json(nullptr)},
               {"last_timing", timing_json(s.last_timing)},
               {"task_timings", timings},
               {"state_fingerprints", s.state_fingerprints},
               {"task_il", matrix_json(s.task_il)},
               {"class_il", matrix_json(s.class_il)}};
  return j.dump();
}

RunState run_state_from_json(const std::string& text) {
  const json j = json::parse(text);
  RunState s;
  s.num_tasks = j.at("num_tasks");
  s.iters_per_task = j.at("iters_per_task");
  s.iters_per_virtual_epoch = j.at("iters_per_virtual_epoch");
  s.task = j.at("task");
  s.iter = j.at("iter");
  s.epoch = j.at("epoch");
  s.global_iter = j.at("global_iter");
  s.lr = j.at("lr");
  for (const auto& term : j.at("losses"))
    s.losses.emplace_back(term.at(0).get<std::string>(), term.at(1).get<double>());
  s.loss = j.at("loss").is_null() ? std::numeric_limits<double>::quiet_NaN() : j.at("loss").get<double>();
  s.last_timing = timing_from(j.at("last_timing"));
  for (const auto& t : j.at("task_timings")) {
    TaskTiming timing;
    timing.iteration_ms = t.at("iteration_ms").get<std::vector<float>>();
    timing.sum = timing_from(t.at("sum"));
    timing.train_s = t.at("train_s");
    timing.eval_s = t.at("eval_s");
    s.task_timings.push_back(std::move(timing));
  }
  // Absent from checkpoints written before distributed runs checked their ranks.
  s.state_fingerprints = j.value("state_fingerprints", std::vector<std::string>{});
  s.task_il = matrix_from(j.at("task_il"));
  s.class_il = matrix_from(j.at("class_il"));
  return s;
}

std::string position_to_json(const CheckpointPosition& p) {
  return json{{"task", p.task}, {"next_iter", p.next_iter}, {"evaluated", p.evaluated}, {"global_iter", p.global_iter}}
      .dump();
}

CheckpointPosition position_from_json(const std::string& text) {
  const json j = json::parse(text);
  CheckpointPosition p;
  p.task = j.at("task");
  p.next_iter = j.at("next_iter");
  p.evaluated = j.at("evaluated");
  p.global_iter = j.at("global_iter");
  return p;
}

namespace {

std::vector<at::Generator> generators() {
  std::vector<at::Generator> out{at::detail::getDefaultCPUGenerator()};
  if (torch::cuda::is_available())
    for (int64_t d = 0; d < static_cast<int64_t>(torch::cuda::device_count()); ++d)
      out.push_back(at::globalContext().defaultGenerator(c10::Device(c10::DeviceType::CUDA, d)));
  return out;
}

}  // namespace

void save_generator_states(torch::serialize::OutputArchive& archive) {
  auto all = generators();
  archive.write("generators", torch::tensor({static_cast<int64_t>(all.size())}));
  for (size_t i = 0; i < all.size(); ++i) {
    std::lock_guard<std::mutex> lock(all[i].mutex());
    archive.write("generator." + std::to_string(i), all[i].get_state());
  }
}

void load_generator_states(torch::serialize::InputArchive& archive) {
  auto all = generators();
  at::Tensor count;
  archive.read("generators", count);
  if (count.item<int64_t>() != static_cast<int64_t>(all.size()))
    throw IoError("the checkpoint holds " + std::to_string(count.item<int64_t>()) +
                  " random generator state(s) but this machine has " + std::to_string(all.size()) +
                  " (CPU + CUDA devices): resume on the same kind of machine");
  for (size_t i = 0; i < all.size(); ++i) {
    at::Tensor state;
    archive.read("generator." + std::to_string(i), state);
    std::lock_guard<std::mutex> lock(all[i].mutex());
    all[i].set_state(state);
  }
}

}  // namespace sscl
