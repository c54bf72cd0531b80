// The run a method's behaviour tests attach to: two tasks of the 4-class
// synthetic data (no prefetch), a small CNN (with BatchNorm buffers) and a
// context with the task data and a backbone factory.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>

#include "core/method.h"
#include "tasks/split_semi_tasks.h"
#include "tests/tasks/synthetic_data.h"

namespace sscl::testing {

class MethodRunFixture : public ::testing::Test {
 protected:
  MethodRunFixture(int64_t labels_per_class, uint64_t seed)
      : config_(Config::from_string("[method]\n[model]\n", "method_test.toml")),
        tasks_(options(labels_per_class), synthetic_splits(4, 20, 1, 12), 0) {
    torch::manual_seed(0);
    context_.model = Classifier(backbone(), tasks_.num_classes());
    context_.task_classes = {tasks_.classes(0), tasks_.classes(1)};
    context_.data = &tasks_;
    context_.batch_size = 4;
    context_.seed = seed;
    context_.make_backbone = [this] { return backbone(); };
  }
  static SplitSemiOptions options(int64_t labels_per_class) {
    SplitSemiOptions o;
    o.split.num_tasks = 2;
    o.split.labels_per_class = labels_per_class;
    o.batch_size = 4;
    o.uratio = 1;
    o.prefetch = false;
    return o;
  }
  std::shared_ptr<Backbone> backbone() {
    return BackboneRegistry::get().at("small_cnn")(config_.section("model"), tasks_.input_shape());
  }

  Config config_;
  SplitSemiTasks tasks_;
  MethodContext context_;
};

}  // namespace sscl::testing
