// The run a method's behaviour tests attach to: two tasks of the 4-class
// synthetic data (no prefetch) and a small CNN (with BatchNorm buffers), built
// by the RunBuilder as the tools build a run; the tests attach the methods they
// examine to its context (model, task data, backbone factory) and may change the
// context's seed or mask first.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>

#include "core/method.h"
#include "tests/methods/built_run.h"

namespace sscl::testing {

class MethodRunFixture : public ::testing::Test {
 protected:
  MethodRunFixture(int64_t labels_per_class, uint64_t seed)
      : config_(Config::from_string("[method]\n[model]\n", "method_test.toml")),
        run_config_(Config::from_string("[method]\nname = \"sft\"\n[checkpoint]\nenabled = false\n", "run.toml")),
        run_(build_run(run_config_, run_dir_, options(labels_per_class))),
        tasks_(dynamic_cast<SplitSemiTasks&>(*run_->data)),
        context_(run_->method->context()) {
    context_.seed = seed;
    context_.mask_train_logits = false;  // tests that want the task mask set it
    tasks_.set_load_unlabeled(true);     // the run's SFT turned the unlabeled views off
  }
  static SplitSemiOptions options(int64_t labels_per_class) {
    SplitSemiOptions o = small_split(labels_per_class, 1);
    o.prefetch = false;
    return o;
  }
  std::shared_ptr<Backbone> backbone() { return context_.make_backbone(); }

  Config config_;  // for the tests' own components
  Config run_config_;
  TempDir run_dir_;
  std::unique_ptr<sscl::Run> run_;
  SplitSemiTasks& tasks_;
  MethodContext context_;
};

}  // namespace sscl::testing
