// tools/export as a user runs it: train a short multi-head run, export it, load
// the file in C++ and in Python (Debian's python3-torch) and get the same
// logits, and its ONNX files in OpenCV; the bad inputs fail with one line
// naming the file or option, writing nothing.
#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "core/nn/state_dict_file.h"
#include "tests/tools/run_binary.h"
#include "tools/exporting/int8_export.h"
#include "tools/exporting/torchscript_export.h"
#include "tools/inference/onnx_runtime.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;
using testing::expect_refused;
using testing::Process;
using testing::run_shell;
using testing::TempDir;

// One trained multi-head run for every test here (20 iterations a task), on
// tiny Fashion-MNIST files (20 training and 10 test images a class) so that its
// evaluations take moments.
const fs::path& trained_run() {
  static TempDir dir;
  static const fs::path run = [] {
    testing::write_tiny_fashion_mnist(dir / "data", 20, 10);
    const auto p =
        testing::run_train(testing::config_path("configs/sft/sft_small_cnn_fmnist5.toml") + " --work-dir '" +
                               (dir / "run").string() + "' --cfg-options data.root='" + (dir / "data").string() +
                               "' train.iters_per_task=20 model.multi_head=true checkpoint.enabled=false",
                           dir);
    EXPECT_EQ(p.exit_code, 0) << p.err;
    return dir / "run";
  }();
  return run;
}

// The same input on both sides: 4 images of evenly spaced values, tasks 0, 1, 4, 2.
at::Tensor fixed_images() { return torch::linspace(-2, 2, 4 * 28 * 28).reshape({4, 1, 28, 28}); }
const char* kPythonLogits =
    "import json, sys, torch\n"
    "m = torch.jit.load(sys.argv[1])\n"
    "x = torch.linspace(-2, 2, 4 * 28 * 28).reshape(4, 1, 28, 28)\n"
    "y = m(x, torch.tensor([0, 1, 4, 2]))\n"
    "print(json.dumps([[v if v != float('-inf') else None for v in row] for row in y.tolist()]))\n";

TEST(ExportEndToEnd, TrainedRunExportsATorchScriptModelThatCppAndPythonLoad) {
  TempDir scratch;
  const fs::path out = scratch / "export";
  const auto p = testing::run_binary(
      SSCL_EXPORT_BINARY, "'" + trained_run().string() + "' --out '" + out.string() + "' --state-dict", scratch);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.out.find("3 BatchNorm folded, 0 kept"), std::string::npos) << p.out;

  const auto info = nlohmann::json::parse(testing::read_file(out / "export.json"));
  EXPECT_TRUE(info["multi_head"].get<bool>());
  EXPECT_EQ(info["scenario"], "task-il");
  EXPECT_EQ(info["tasks"].size(), 5u);
  EXPECT_EQ(info["class_names"][9], "Ankle boot");
  const auto& file = info["files"][0];
  EXPECT_EQ(file["bytes"].get<uintmax_t>(), fs::file_size(out / "model_fp32.pt"));
  EXPECT_LE(file["check"]["max_abs_logit_difference_batch_1"].get<double>(), 1e-5);
  EXPECT_LE(file["check"]["max_abs_logit_difference_batch_64"].get<double>(), 1e-5);

  auto module = torch::jit::load((out / "model_fp32.pt").string());
  const auto logits = run_traced(module, fixed_images(), torch::tensor({0, 1, 4, 2}, torch::kLong));
  ASSERT_EQ(logits.sizes(), (at::IntArrayRef{4, 10}));

  std::ofstream(scratch / "logits.py") << kPythonLogits;
  const auto py = run_shell(
      "/usr/bin/python3 '" + (scratch / "logits.py").string() + "' '" + (out / "model_fp32.pt").string() + "'",
      scratch);
  ASSERT_EQ(py.exit_code, 0) << "Python's torch.jit.load (python3-torch; tools/test installs it): " << py.err;
  const auto rows = nlohmann::json::parse(py.out);
  ASSERT_EQ(rows.size(), 4u);
  const int64_t tasks[] = {0, 1, 4, 2};
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 10; ++c) {
      const bool in_task = c / 2 == tasks[r];  // Fashion-MNIST-5: task t has classes 2t, 2t + 1
      const float cpp = logits[r][c].item<float>();
      if (!in_task) {
        EXPECT_TRUE(rows[r][c].is_null() && std::isinf(cpp)) << r << "," << c;
        continue;
      }
      ASSERT_TRUE(rows[r][c].is_number()) << r << "," << c;
      EXPECT_NEAR(rows[r][c].get<double>(), cpp, 1e-6) << r << "," << c;
    }

  // --state-dict: the trained weights (BatchNorm not folded) under sscl's names
  // (a small CNN has no torchvision counterpart), which Python's torch.load and
  // our loader read as model.pt holds them.
  const auto& entry = info["files"].back();
  ASSERT_EQ(entry["format"], "state_dict") << info["files"];
  EXPECT_EQ(entry["bytes"].get<uintmax_t>(), fs::file_size(out / "state_dict.pt"));
  const auto exported = read_state_dict_file(out / "state_dict.pt");
  const auto trained = read_state_dict_file(trained_run() / "model.pt");
  ASSERT_EQ(exported.tensors.size(), trained.tensors.size());
  EXPECT_EQ(entry["tensors"].get<size_t>(), trained.tensors.size());
  std::map<std::string, at::Tensor> by_name(exported.tensors.begin(), exported.tensors.end());
  for (const auto& [name, tensor] : trained.tensors) {
    ASSERT_TRUE(by_name.count(name)) << name;
    EXPECT_TRUE(by_name[name].equal(tensor)) << name;
  }
  const auto keys = run_shell(
      "/usr/bin/python3 -c 'import sys, torch; d = torch.load(sys.argv[1]); "
      "print(len(d), float(d[\"backbone.conv1.weight\"].sum()))' '" +
          (out / "state_dict.pt").string() + "'",
      scratch);
  ASSERT_EQ(keys.exit_code, 0) << keys.err;
  at::Tensor conv1;
  for (const auto& [name, tensor] : trained.tensors)
    if (name == "backbone.conv1.weight") conv1 = tensor;
  ASSERT_TRUE(conv1.defined());
  std::istringstream py_out(keys.out);
  size_t count = 0;
  double sum = 0;
  py_out >> count >> sum;
  EXPECT_EQ(count, trained.tensors.size());
  EXPECT_NEAR(sum, conv1.sum().item<double>(), 1e-4);
}

// The int8 file: every layer quantized, about a quarter of the fp32 bytes, the
// fp32 predictions within each task, and Python's torch.jit.load (with the
// engine export.json names) gives the C++ logits.
TEST(ExportEndToEnd, Int8ModelAgreesWithFp32AndLoadsInPython) {
  TempDir scratch;
  const fs::path out = scratch / "export";
  const auto p = testing::run_binary(
      SSCL_EXPORT_BINARY, "'" + trained_run().string() + "' --out '" + out.string() + "' --int8 --calib-images 100",
      scratch);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.out.find("model_int8.pt"), std::string::npos) << p.out;
  const auto info = nlohmann::json::parse(testing::read_file(out / "export.json"));
  ASSERT_EQ(info["files"].size(), 2u);
  const auto& q = info["files"][1];
  EXPECT_EQ(q["file"], "model_int8.pt");
  EXPECT_EQ(q["precision"], "int8");
  EXPECT_EQ(q["bytes"].get<uintmax_t>(), fs::file_size(out / "model_int8.pt"));
  EXPECT_LE(q["bytes_to_fp32"].get<double>(), 0.3);
  EXPECT_EQ(q["calibration_images"].get<int64_t>(), 100);
  EXPECT_EQ(q["quantized_layers"].get<int64_t>(), 8);  // two convolutions, the hidden layer, five task heads
  EXPECT_EQ(q["float_layers"].get<int64_t>(), 0);
  const auto& check = q["check"];
  EXPECT_TRUE(check["top1_agreement_percent"]["class_il"].is_null());  // multi-head: no class-IL prediction
  EXPECT_GE(check["top1_agreement_percent"]["task_il"].get<double>(), 90.0);
  EXPECT_NEAR(check["accuracy_percent"]["task_il"]["int8"].get<double>(),
              check["accuracy_percent"]["task_il"]["fp32"].get<double>(), 5.0);
  const std::string engine = q["engine"];

  use_quantized_engine(engine);  // as tools/infer does before loading an int8 file
  auto module = torch::jit::load((out / "model_int8.pt").string());
  const auto logits = run_traced(module, fixed_images(), torch::tensor({0, 1, 4, 2}, torch::kLong));
  std::ofstream(scratch / "logits.py") << "import torch\ntorch.backends.quantized.engine = '" << engine << "'\n"
                                       << kPythonLogits;
  const auto py = run_shell(
      "/usr/bin/python3 '" + (scratch / "logits.py").string() + "' '" + (out / "model_int8.pt").string() + "'",
      scratch);
  ASSERT_EQ(py.exit_code, 0) << py.err;
  const auto rows = nlohmann::json::parse(py.out);
  ASSERT_EQ(rows.size(), 4u);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 10; ++c) {
      const float cpp = logits[r][c].item<float>();
      if (std::isinf(cpp)) {
        EXPECT_TRUE(rows[r][c].is_null()) << r << "," << c;
      } else {
        ASSERT_TRUE(rows[r][c].is_number()) << r << "," << c;
        EXPECT_NEAR(rows[r][c].get<double>(), cpp, 1e-6) << r << "," << c;
      }
    }
}

TEST(ExportEndToEnd, Int8OptionsAreCheckedBeforeAnythingIsWritten) {
  TempDir scratch;
  const fs::path out = scratch / "export";
  const std::string run = "'" + trained_run().string() + "' --out '" + out.string() + "'";
  expect_refused(testing::run_binary(SSCL_EXPORT_BINARY, run + " --int8 --engine fbgemm", scratch),
                 "--engine fbgemm: not a quantized engine of this LibTorch", out);
  expect_refused(testing::run_binary(SSCL_EXPORT_BINARY, run + " --engine qnnpack", scratch),
                 "--calib-images and --engine go with --int8", out);
  expect_refused(testing::run_binary(SSCL_EXPORT_BINARY, run + " --int8 --calib-images 0", scratch), "--calib-images",
                 out);
}

// --onnx on the multi-head run: one file per task, each checked at export by
// OpenCV against the trace, and read again here it gives the trace's logits of
// its task; tools/infer runs the set.
TEST(ExportEndToEnd, OnnxFilesPerTaskRunInOpenCvAsTheTrace) {
  TempDir scratch;
  const fs::path out = scratch / "export";
  const auto p = testing::run_binary(SSCL_EXPORT_BINARY,
                                     "'" + trained_run().string() + "' --out '" + out.string() + "' --onnx", scratch);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.out.find("model_task4.onnx"), std::string::npos) << p.out;
  const auto info = nlohmann::json::parse(testing::read_file(out / "export.json"));
  ASSERT_EQ(info["files"].size(), 6u);  // model_fp32.pt and five tasks
  auto module = torch::jit::load((out / "model_fp32.pt").string());
  for (int64_t task = 0; task < 5; ++task) {
    const auto& entry = info["files"][1 + task];
    const std::string file = "model_task" + std::to_string(task) + ".onnx";
    ASSERT_EQ(entry["file"], file);
    EXPECT_EQ(entry["format"], "onnx");
    EXPECT_EQ(entry["opset"].get<int64_t>(), 13);
    EXPECT_EQ(entry["task"].get<int64_t>(), task);
    EXPECT_EQ(entry["bytes"].get<uintmax_t>(), fs::file_size(out / file));
    EXPECT_LE(entry["check"]["max_abs_logit_difference"].get<double>(), 1e-4);
    OnnxRuntime runtime(testing::read_file(out / file), file);
    const auto reference = run_traced(module, fixed_images(), torch::full({4}, task, torch::kLong));
    const auto logits = runtime.logits(fixed_images());
    ASSERT_TRUE(at::isinf(logits).equal(at::isinf(reference))) << file;
    const auto finite = at::isfinite(reference);
    EXPECT_EQ(finite.sum().item<int64_t>(), 4 * 2) << file;  // the task's two classes
    EXPECT_LE((logits - reference).masked_select(finite).abs().max().item<double>(), 1e-4) << file;
  }

  // tools/infer on one of them runs all five, each image through its task's file,
  // and gets the run's own task-IL accuracies (20 test images a task: one
  // near-tie flipped by float32 rounding is 5 points).
  const auto infer =
      testing::run_binary(SSCL_INFER_BINARY,
                          "'" + (out / "model_task2.onnx").string() + "' --latency-images 10 --warmup 1 " +
                              "--throughput-batches 1 --out '" + (scratch / "infer").string() + "'",
                          scratch);
  ASSERT_EQ(infer.exit_code, 0) << infer.err;
  const auto r = nlohmann::json::parse(testing::read_file(scratch / "infer" / "infer.json"));
  ASSERT_EQ(r["model"]["files"].size(), 5u) << r["model"];
  uintmax_t bytes = 0;
  for (int task = 0; task < 5; ++task) bytes += fs::file_size(out / ("model_task" + std::to_string(task) + ".onnx"));
  EXPECT_EQ(r["model"]["bytes"].get<uintmax_t>(), bytes);
  EXPECT_NE(r["runtime"]["engine"].get<std::string>().find("one file per task (5)"), std::string::npos) << r["runtime"];
  EXPECT_TRUE(r["accuracy"]["class_il"].is_null());
  const auto results = nlohmann::json::parse(testing::read_file(trained_run() / "results.json"));
  const auto expected = results["accuracy"]["task_il"]["matrix"].back().get<std::vector<double>>();
  const auto measured = r["accuracy"]["task_il"]["per_task"].get<std::vector<double>>();
  ASSERT_EQ(measured.size(), expected.size());
  for (size_t t = 0; t < expected.size(); ++t) EXPECT_NEAR(measured[t], expected[t], 5.0) << "task " << t;
}

TEST(ExportEndToEnd, OnnxOptionsAreCheckedBeforeAnythingIsWritten) {
  TempDir scratch;
  const fs::path out = scratch / "export";
  const std::string run = "'" + trained_run().string() + "' --out '" + out.string() + "'";
  expect_refused(testing::run_binary(SSCL_EXPORT_BINARY, run + " --onnx --opset 12", scratch),
                 "--opset 12: the ONNX export writes opsets 13 to 17", out);
  expect_refused(testing::run_binary(SSCL_EXPORT_BINARY, run + " --opset 13", scratch), "--opset goes with --onnx",
                 out);
}

TEST(ExportEndToEnd, BadRunDirectoriesAreRefusedNamingTheFileAndNothingIsWritten) {
  TempDir scratch;
  const fs::path out = scratch / "export";
  expect_refused(testing::run_binary(SSCL_EXPORT_BINARY,
                                     "'" + (scratch / "nothing").string() + "' --out '" + out.string() + "'", scratch),
                 "no such run directory", out);

  // An unfinished run: config.toml, no model.pt.
  const fs::path unfinished = scratch / "unfinished";
  fs::create_directories(unfinished);
  fs::copy_file(trained_run() / "config.toml", unfinished / "config.toml");
  expect_refused(
      testing::run_binary(SSCL_EXPORT_BINARY, "'" + unfinished.string() + "' --out '" + out.string() + "'", scratch),
      (unfinished / "model.pt").string() + ": no such file (the run has not finished", out);

  // A truncated model.pt.
  const std::string weights = testing::read_file(trained_run() / "model.pt");
  std::ofstream(unfinished / "model.pt", std::ios::binary) << weights.substr(0, weights.size() / 2);
  expect_refused(
      testing::run_binary(SSCL_EXPORT_BINARY, "'" + unfinished.string() + "' --out '" + out.string() + "'", scratch),
      (unfinished / "model.pt").string() + ": not a model.pt of this run's model", out);

  // Another run's model (single head where the config says multi-head).
  const std::string config = testing::read_file(trained_run() / "config.toml");
  std::string single = config;
  const auto at = single.find("multi_head = true");
  ASSERT_NE(at, std::string::npos);
  single.replace(at, 17, "multi_head = false");
  std::ofstream(unfinished / "config.toml") << single;
  std::ofstream(unfinished / "model.pt", std::ios::binary) << weights;
  expect_refused(
      testing::run_binary(SSCL_EXPORT_BINARY, "'" + unfinished.string() + "' --out '" + out.string() + "'", scratch),
      (unfinished / "model.pt").string() + ": not a model.pt of this run's model", out);
}

}  // namespace
}  // namespace sscl
