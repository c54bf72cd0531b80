// The annotator that labels the images an active-learning query chose. The only
// way to a label of an unlabeled image; the learner sees an Oracle, never the
// dataset's labels.
//   ground_truth: the dataset's labels, as a simulated human annotator; counts what
//                 it reveals.
//   teacher:      a model of ours trained elsewhere (the "large model in the cloud"
//                 of edge-cloud collaborative learning), loaded from a finished run
//                 directory (config.toml + model.pt); its labels are model-given and
//                 may be wrong.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/nn/classifier.h"
#include "core/task_data.h"

namespace sscl {

class Oracle {
 public:
  virtual ~Oracle() = default;
  virtual std::string name() const = 0;
  // True when the labels come from a model (and may be wrong).
  virtual bool model_given() const = 0;
  // Labels (int64 [N], global class ids among `classes`) of training images `ids`.
  virtual at::Tensor annotate(const at::Tensor& ids, const std::vector<int64_t>& classes) = 0;
  int64_t revealed() const { return revealed_; }

 protected:
  int64_t revealed_ = 0;
};

class GroundTruthOracle : public Oracle {
 public:
  // `labels`: the training set's labels, int64 [num_train_images].
  explicit GroundTruthOracle(at::Tensor labels) : labels_(std::move(labels)) {}
  std::string name() const override { return "ground_truth"; }
  bool model_given() const override { return false; }
  at::Tensor annotate(const at::Tensor& ids, const std::vector<int64_t>& classes) override;

 private:
  at::Tensor labels_;
};

// Predicts with the teacher in eval mode on the plain (normalised) training images
// and takes the argmax over `classes`: the annotator is told which classes the
// task has, as a human one would be.
class TeacherOracle : public Oracle {
 public:
  TeacherOracle(Classifier teacher, const TaskData& data, torch::Device device, std::string source);
  // Loads RUN_DIR/config.toml (model.* section) and RUN_DIR/model.pt. Throws
  // IoError / ConfigError naming the file when either is missing or does not fit
  // `data` (input shape, number of classes).
  static std::unique_ptr<TeacherOracle> load(const std::filesystem::path& run_dir, const TaskData& data,
                                             torch::Device device);
  std::string name() const override { return "teacher:" + source_; }
  bool model_given() const override { return true; }
  at::Tensor annotate(const at::Tensor& ids, const std::vector<int64_t>& classes) override;

 private:
  Classifier teacher_;
  const TaskData& data_;
  torch::Device device_;
  std::string source_;
};

}  // namespace sscl
