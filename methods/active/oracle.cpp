#include "methods/active/oracle.h"

#include <ATen/ATen.h>
#include <torch/serialize.h>

#include "core/config.h"
#include "core/error.h"
#include "methods/common/scoped_torch_seed.h"

namespace sscl {

namespace {

at::Tensor oracle_class_tensor(const std::vector<int64_t>& classes) {
  return at::tensor(at::ArrayRef<int64_t>(classes), at::kLong);
}

}  // namespace

at::Tensor GroundTruthOracle::annotate(const at::Tensor& ids, const std::vector<int64_t>& classes) {
  const auto rows = ids.to(at::kLong).cpu();
  if (rows.numel() > 0)
    check<Error>(rows.min().item<int64_t>() >= 0 && rows.max().item<int64_t>() < labels_.size(0),
                 "ground_truth oracle: image id out of range");
  const auto out = labels_.index_select(0, rows);
  // The pool of a task holds only the task's images; anything else is a caller bug.
  check<Error>(at::isin(out, oracle_class_tensor(classes)).all().item<bool>(),
               "ground_truth oracle: an image asked for is not of the task's classes");
  revealed_ += rows.numel();
  return out;
}

TeacherOracle::TeacherOracle(Classifier teacher, const TaskData& data, torch::Device device, std::string source)
    : teacher_(std::move(teacher)), data_(data), device_(device), source_(std::move(source)) {
  teacher_->to(device_);
  teacher_->eval();
}

std::unique_ptr<TeacherOracle> TeacherOracle::load(const std::filesystem::path& run_dir, const TaskData& data,
                                                   torch::Device device) {
  const auto config_file = run_dir / "config.toml";
  const auto weights_file = run_dir / "model.pt";
  if (!std::filesystem::exists(config_file))
    throw IoError(config_file.string() + ": no such file (active.teacher must be a finished run directory of sscl)");
  if (!std::filesystem::exists(weights_file))
    throw IoError(weights_file.string() +
                  ": no such file (active.teacher must be a run that finished and saved "
                  "its model)");
  const Config config = Config::load(config_file);
  if (config.get_or<bool>("model.multi_head", false))
    throw ConfigError(config_file.string() +
                      ": model.multi_head teachers are not supported (one head is needed "
                      "to label any task)");
  const auto backbone_name = config.get<std::string>("model.backbone");
  // Built under its own seed (its weights are then loaded): the run's generator is not touched.
  ScopedTorchSeed seeded(0);
  auto backbone = BackboneRegistry::get().at(backbone_name)(config.section("model"), data.input_shape());
  Classifier teacher(backbone, data.num_classes());
  try {
    torch::load(teacher, weights_file.string());
  } catch (const c10::Error& e) {
    throw IoError(weights_file.string() + ": cannot load it as a " + backbone_name + " classifier over " +
                  std::to_string(data.num_classes()) + " classes of this dataset's input shape (" +
                  e.what_without_backtrace() + ")");
  }
  return std::make_unique<TeacherOracle>(teacher, data, device, run_dir.string());
}

at::Tensor TeacherOracle::annotate(const at::Tensor& ids, const std::vector<int64_t>& classes) {
  constexpr int64_t kBatch = 256;
  const auto rows = ids.to(at::kLong).cpu();
  const auto allowed = oracle_class_tensor(classes).to(device_);
  std::vector<at::Tensor> out;
  torch::NoGradGuard no_grad;
  for (int64_t start = 0; start < rows.numel(); start += kBatch) {
    const auto chunk = rows.narrow(0, start, std::min(kBatch, rows.numel() - start));
    const auto images = data_.views(data_.raw_images(chunk), View::kPlain, 0).to(device_);
    const auto logits = teacher_->forward(images).index_select(1, allowed);
    out.push_back(allowed.index_select(0, logits.argmax(1)).cpu());
  }
  revealed_ += rows.numel();
  return out.empty() ? at::empty({0}, at::kLong) : at::cat(out);
}

}  // namespace sscl
