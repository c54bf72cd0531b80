// A tiny in-memory task sequence and model for exercising the trainer without data.
#pragma once

#include <torch/torch.h>

#include "core/config.h"
#include "core/evaluator.h"
#include "core/method.h"
#include "core/optim.h"
#include "core/task_data.h"

namespace sscl::testing {

// Flattens 1x4x4 images into 4 features with one linear layer.
class TinyBackbone : public Backbone {
 public:
  TinyBackbone() { fc_ = register_module("fc", torch::nn::Linear(16, 4)); }
  torch::Tensor forward(const torch::Tensor& x) override { return fc_(x.flatten(1)); }
  int64_t feature_dim() const override { return 4; }

 private:
  torch::nn::Linear fc_{nullptr};
};

// Two tasks of two classes; an image of class c is 1 at pixel c and 0 elsewhere.
class FakeTaskData : public TaskData {
 public:
  int num_tasks() const override { return 2; }
  int64_t num_classes() const override { return 4; }
  InputShape input_shape() const override { return {1, 4, 4}; }
  const std::vector<int64_t>& classes(int task) const override { return classes_.at(task); }
  int64_t batch_size() const override { return 2; }
  void set_load_unlabeled(bool load) override { load_unlabeled = load; }
  TrainBatch train_batch(int task, int64_t iter) override {
    ++batches_served;
    TrainBatch b;
    b.task = task;
    b.labeled.labels = torch::tensor({classes_[task][0], classes_[task][1]});
    b.labeled.images = images_of(b.labeled.labels);
    b.labeled.indices = torch::tensor({iter, iter + 1});
    return b;
  }
  int64_t num_eval_batches(int, int64_t) const override { return 1; }
  EvalBatch eval_batch(int task, int64_t, int64_t) const override {
    EvalBatch b;
    b.labels = torch::tensor({classes_[task][0], classes_[task][1]});
    b.images = images_of(b.labels);
    return b;
  }

  int64_t num_unlabeled(int) const override { return 0; }  // batches carry none
  std::vector<int64_t> unlabeled_ids(int) const override { return {}; }
  void add_labels(int, const at::Tensor&, const at::Tensor&) override {
    throw std::logic_error("FakeTaskData has no unlabeled pool");
  }

  // Training image id c is the image of class c.
  LabeledSet labeled_set(int task) const override {
    const auto ids = torch::tensor(classes_.at(task));
    return {ids, ids.clone()};
  }
  at::Tensor raw_images(const at::Tensor& ids) const override {
    return (images_of(ids) * 255).to(torch::kByte).permute({0, 2, 3, 1}).contiguous();
  }
  at::Tensor views(const at::Tensor& raw, View, uint64_t, int64_t = 0) const override {
    return raw.permute({0, 3, 1, 2}).to(torch::kFloat) / 255;
  }

  static torch::Tensor images_of(const torch::Tensor& labels) {
    return torch::one_hot(labels, 16).to(torch::kFloat).view({-1, 1, 4, 4});
  }

  bool load_unlabeled = true;
  int batches_served = 0;

 private:
  std::vector<std::vector<int64_t>> classes_{{0, 1}, {2, 3}};
};

// The optimizer and schedule of a TOML text's [optimizer] and [lr_schedule]
// tables, through their registries as a run builds them.
inline Optimizer optimizer_of(const std::string& toml) {
  const Config config = Config::from_string("[optimizer]\n" + toml, "optimizer.toml");
  return build_optimizer(config.section("optimizer"));
}
inline LrSchedule schedule_of(const std::string& toml, double lr) {
  const Config config = Config::from_string("[lr_schedule]\n" + toml, "schedule.toml");
  return build_lr_schedule(config.section("lr_schedule"), lr);
}
inline Evaluator evaluator(bool all_tasks = false) {
  EvalOptions o;
  o.all_tasks = all_tasks;
  return Evaluator(o, torch::kCPU);
}

inline Classifier make_tiny_classifier() {
  torch::manual_seed(0);
  return Classifier(std::make_shared<TinyBackbone>(), 4);
}

}  // namespace sscl::testing
