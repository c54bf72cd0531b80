// What the semi-supervised losses' run tests share: MethodRunFixture's two tasks
// and small CNN, the method the registry names after a loss (SFT with the loss
// composed) built from a few option lines, run states, the task's start, a
// save/load round trip of the state a checkpoint holds (method_state_bytes,
// load_method_state), and reading stats and loss terms back.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/method.h"
#include "core/state.h"
#include "tests/methods/method_run_fixture.h"

namespace sscl::testing {

// The method's and its semi-supervised loss's state ("method." and "semi."
// fields), as the trainer's checkpoints hold it.
class MethodStateRoot : public Stateful {
 public:
  explicit MethodStateRoot(Method& method) : method_(method) {}
  void visit_state(StateVisitor& s) override { method_.visit_all_state(s); }

 private:
  Method& method_;
};

// `method`'s state saved as a checkpoint's bytes.
inline std::string method_state_bytes(Method& method) {
  MethodStateRoot root(method);
  return StateVisitor::to_bytes(root);
}

// The archive method_state_bytes() wrote, read back (to look at its fields).
inline torch::serialize::InputArchive state_archive(const std::string& bytes) {
  torch::serialize::InputArchive in;
  std::istringstream source(bytes);
  in.load_from(source);
  return in;
}

// Loads what method_state_bytes() saved into `method` (attached to the run).
inline void load_method_state(Method& method, const std::string& bytes) {
  MethodStateRoot root(method);
  StateVisitor::from_bytes(root, bytes, method.context().device);
}

// A float tensor of the values (expected thresholds, counts, probabilities).
inline torch::Tensor float_tensor(std::initializer_list<float> values) {
  return torch::tensor(std::vector<float>(values));
}

// The method's stat `key` (a test failure and NaN when it has none).
inline double stat_of(const Method& method, const std::string& key) {
  for (const auto& [name, value] : method.all_stats())
    if (name == key) return value;
  ADD_FAILURE() << "no stat " << key;
  return std::numeric_limits<double>::quiet_NaN();
}

// The loss term `name` (a test failure and NaN when there is none).
inline double term_of(const LossTerms& terms, const std::string& name) {
  for (const auto& [n, v] : terms)
    if (n == name) return v.item<double>();
  ADD_FAILURE() << "no loss term " << name;
  return std::numeric_limits<double>::quiet_NaN();
}

class SemiLossRun : public MethodRunFixture {
 protected:
  // `method`: the MethodRegistry name; 3 labels per class; tasks of `iters_per_task` iterations.
  SemiLossRun(std::string method, uint64_t seed, int64_t iters_per_task)
      : MethodRunFixture(/*labels_per_class=*/3, seed), method_(std::move(method)), iters_per_task_(iters_per_task) {}

  // The method with `options` in its [method] section, attached to the run (under the task mask when asked).
  std::unique_ptr<Method> make(const std::string& options = "", bool task_mask = false) {
    auto config = Config::from_string("[method]\n" + options, method_ + ".toml");
    return attached(MethodRegistry::get().at(method_)(config.section("method")), task_mask);
  }
  std::unique_ptr<Method> attached(std::unique_ptr<Method> method, bool task_mask = false) {
    auto context = context_;
    context.mask_train_logits = task_mask;
    method->attach(context);
    return method;
  }

  // Iteration `iter` of task `task` (of 2).
  RunState at(int task, int64_t iter = 0) const {
    RunState s;
    s.num_tasks = 2;
    s.iters_per_task = iters_per_task_;
    s.task = task;
    s.iter = iter;
    return s;
  }
  // The hooks' before_task, as the trainer calls it at the start of `task`.
  void begin_task(Method& method, int task) const {
    for (Hook* hook : method.lifecycle_hooks()) hook->before_task(at(task));
  }

  // A new method (make(options)) that loaded what `from` saved, through bytes as a checkpoint.
  std::unique_ptr<Method> reloaded(Method& from, const std::string& options = "") {
    const std::string bytes = method_state_bytes(from);
    auto restored = make(options);
    load_method_state(*restored, bytes);
    return restored;
  }

  // Every option line set is a ConfigError.
  void expect_rejected(std::initializer_list<const char*> options) {
    for (const char* o : options) EXPECT_THROW(make(o), ConfigError) << o;
  }

 private:
  std::string method_;
  int64_t iters_per_task_;
};

}  // namespace sscl::testing
