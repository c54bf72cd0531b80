// tools/infer as a user runs it: train two short single-head runs, export them,
// measure one on its run's test images, and route between them (edge-cloud).
// The accuracies must be the run's own; the sweep's ends must be the edge and
// the cloud alone; bad inputs fail with one line naming the file or option.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/tools/run_binary.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;
using testing::expect_refused;
using testing::Process;
using testing::run_shell;
using testing::TempDir;

std::string quoted_path(const fs::path& path) { return "'" + path.string() + "'"; }

// Tiny Fashion-MNIST files (20 training and 50 test images a class), so that
// the runs' evaluations and tools/infer's passes take moments.
constexpr int64_t kTestImages = 500;

// A trained and exported Fashion-MNIST-5 run of the small CNN (single head,
// class-IL, so that edge-cloud routing predicts among every class) on the tiny
// data in `data`: `iterations` a task, exported with `export_options`.
// Returns the export directory.
fs::path trained_export(const TempDir& dir, const fs::path& data, const std::string& name, int iterations,
                        const std::string& export_options = "") {
  const fs::path run = dir / name;
  auto p = testing::run_train(testing::config_path("configs/sft/sft_small_cnn_fmnist5.toml") + " --work-dir " +
                                  quoted_path(run) + " --cfg-options data.root=" + quoted_path(data) +
                                  " data.scenario=class-il train.iters_per_task=" + std::to_string(iterations) +
                                  " checkpoint.enabled=false",
                              dir);
  EXPECT_EQ(p.exit_code, 0) << p.err;
  p = run_shell(std::string(SSCL_EXPORT_BINARY) + " " + quoted_path(run) + " --out " +
                    quoted_path(dir / (name + "_export")) + export_options,
                dir);
  EXPECT_EQ(p.exit_code, 0) << p.err;
  return dir / (name + "_export");
}

struct Exports {
  TempDir dir;
  fs::path edge, cloud;
};

const Exports& exports() {
  static const Exports* made = [] {
    auto* e = new Exports;
    testing::write_tiny_fashion_mnist(e->dir / "data", 20, kTestImages / 10);
    e->edge = trained_export(e->dir, e->dir / "data", "edge", 10);
    e->cloud = trained_export(e->dir, e->dir / "data", "cloud", 40, " --int8 --calib-images 100 --onnx");
    return e;
  }();
  return *made;
}

nlohmann::json infer_json(const std::string& args, const TempDir& scratch, const std::string& out_name = "infer") {
  const fs::path out = scratch / out_name;
  const auto p = testing::run_binary(
      SSCL_INFER_BINARY, args + " --latency-images 20 --warmup 2 --throughput-batches 2 --out " + quoted_path(out),
      scratch);
  EXPECT_EQ(p.exit_code, 0) << p.err;
  return nlohmann::json::parse(testing::read_file(out / "infer.json"));
}

// The run's final row of an accuracy matrix in results.json.
std::vector<double> final_row(const fs::path& export_dir, const std::string& matrix) {
  const auto info = nlohmann::json::parse(testing::read_file(export_dir / "export.json"));
  const auto results =
      nlohmann::json::parse(testing::read_file(fs::path(info["run_dir"].get<std::string>()) / "results.json"));
  return results.at("accuracy").at(matrix).at("matrix").back().get<std::vector<double>>();
}

TEST(InferEndToEnd, AccuracyIsTheRunsOwnAndTheFiguresAreThere) {
  TempDir scratch;
  const auto r = infer_json(quoted_path(exports().edge), scratch);
  EXPECT_EQ(r["data"]["test_images"].get<int64_t>(), kTestImages);
  // The traced model (BatchNorm folded) gives the trained model's accuracies
  // (a float32 step could flip an argmax: one image of a task's 100 is 1 point).
  for (const std::string matrix : {"task_il", "class_il"}) {
    const auto expected = final_row(exports().edge, matrix);
    const auto measured = r["accuracy"][matrix]["per_task"].get<std::vector<double>>();
    ASSERT_EQ(measured.size(), expected.size());
    for (size_t t = 0; t < expected.size(); ++t) EXPECT_NEAR(measured[t], expected[t], 1.0) << matrix << " task " << t;
  }
  const auto& l = r["latency_batch_1_ms"];
  EXPECT_EQ(l["images"].get<int64_t>(), 20);
  EXPECT_GT(l["p50"].get<double>(), 0);
  EXPECT_LE(l["p50"].get<double>(), l["p90"].get<double>());
  EXPECT_LE(l["p90"].get<double>(), l["p99"].get<double>());
  EXPECT_GT(r["throughput"]["images_per_s"].get<double>(), 0);
  EXPECT_EQ(r["throughput"]["batch"].get<int64_t>(), 32);
  EXPECT_EQ(r["runtime"]["threads"].get<int>(), 1);
  EXPECT_EQ(r["model"]["bytes"].get<uintmax_t>(), fs::file_size(exports().edge / "model_fp32.pt"));
  EXPECT_GT(r["peak_rss_mib"].get<double>(), 0);
}

// The int8 file (of the longer run: the short one is near chance, where int8's
// rounding flips near-ties) runs on the engine it was quantized for, and its
// accuracies are the fp32 file's within a few images.
TEST(InferEndToEnd, Int8ModelRunsOnItsEngineNearTheFp32Accuracy) {
  TempDir scratch;
  const auto fp32 = infer_json(quoted_path(exports().cloud), scratch, "fp32");
  const auto int8 = infer_json(quoted_path(exports().cloud / "model_int8.pt"), scratch, "int8");
  EXPECT_EQ(int8["model"]["precision"], "int8");
  EXPECT_EQ(int8["model"]["bytes"].get<uintmax_t>(), fs::file_size(exports().cloud / "model_int8.pt"));
  const auto info = nlohmann::json::parse(testing::read_file(exports().cloud / "export.json"));
  EXPECT_NE(int8["runtime"]["engine"].get<std::string>().find("quantized engine " +
                                                              info["files"][1]["engine"].get<std::string>()),
            std::string::npos);
  for (const std::string scenario : {"task_il", "class_il"})
    EXPECT_NEAR(int8["accuracy"][scenario]["mean"].get<double>(), fp32["accuracy"][scenario]["mean"].get<double>(), 3.0)
        << scenario << " fp32 " << fp32["accuracy"][scenario]["mean"] << " int8 " << int8["accuracy"][scenario]["mean"];
}

// The ONNX file of the same run runs in OpenCV's DNN module with the fp32
// TorchScript file's accuracies (their logits differ by at most 1e-4).
TEST(InferEndToEnd, OnnxModelRunsInOpenCvWithTheFp32Accuracy) {
  TempDir scratch;
  const auto fp32 = infer_json(quoted_path(exports().cloud), scratch, "fp32");
  const auto onnx = infer_json(quoted_path(exports().cloud / "model.onnx"), scratch, "onnx");
  EXPECT_EQ(onnx["model"]["bytes"].get<uintmax_t>(), fs::file_size(exports().cloud / "model.onnx"));
  EXPECT_NE(onnx["runtime"]["engine"].get<std::string>().find("opencv-dnn"), std::string::npos) << onnx["runtime"];
  EXPECT_GT(onnx["latency_batch_1_ms"]["p50"].get<double>(), 0);
  for (const std::string scenario : {"task_il", "class_il"})
    EXPECT_NEAR(onnx["accuracy"][scenario]["mean"].get<double>(), fp32["accuracy"][scenario]["mean"].get<double>(), 0.5)
        << scenario;
}

TEST(InferEndToEnd, EdgeCloudRoutesAndTheSweepEndsAtEdgeAndCloudAlone) {
  TempDir scratch;
  const std::string both = quoted_path(exports().edge) + " --cloud " + quoted_path(exports().cloud);
  const auto nothing = infer_json(both + " --route confidence:0", scratch);
  const auto& n = nothing["edge_cloud"];
  EXPECT_EQ(n["scenario"], "class-IL");
  EXPECT_EQ(n["uploaded_images"].get<int64_t>(), 0);
  EXPECT_DOUBLE_EQ(n["collaborative_accuracy"].get<double>(), n["edge_accuracy"].get<double>());
  // The class-IL accuracy over every test image is the mean over the (equal-sized) tasks.
  EXPECT_NEAR(n["edge_accuracy"].get<double>(), nothing["accuracy"]["class_il"]["mean"].get<double>(), 1e-9);
  EXPECT_NEAR(n["cloud_accuracy"].get<double>(), nothing["cloud"]["accuracy"]["class_il"]["mean"].get<double>(), 1e-9);

  // Every softmax top-1 is below 1: everything goes to the cloud.
  const auto all = infer_json(both + " --route confidence:1", scratch)["edge_cloud"];
  EXPECT_EQ(all["uploaded_images"].get<int64_t>(), kTestImages);
  EXPECT_DOUBLE_EQ(all["collaborative_accuracy"].get<double>(), all["cloud_accuracy"].get<double>());

  const auto sweep = infer_json(both + " --route margin:sweep", scratch)["edge_cloud"];
  const auto& points = sweep["sweep"];
  ASSERT_EQ(points.size(), 21u);
  EXPECT_EQ(points.front()["upload_share"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(points.front()["accuracy"].get<double>(), sweep["edge_accuracy"].get<double>());
  EXPECT_EQ(points.back()["upload_share"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(points.back()["accuracy"].get<double>(), sweep["cloud_accuracy"].get<double>());
  for (size_t i = 1; i < points.size(); ++i)
    EXPECT_GE(points[i]["upload_share"].get<double>(), points[i - 1]["upload_share"].get<double>());

  // The sweep's middle threshold as a fixed route gives that point of the curve.
  const auto& middle = points[10];
  const auto some = infer_json(both + " --route margin:" + middle["threshold"].dump(), scratch, "fixed")["edge_cloud"];
  const int64_t uploaded = some["uploaded_images"].get<int64_t>();
  EXPECT_GT(uploaded, 0);
  EXPECT_LT(uploaded, kTestImages);
  EXPECT_DOUBLE_EQ(some["upload_share"].get<double>(), middle["upload_share"].get<double>());
  EXPECT_EQ(some["upload_bytes"].get<int64_t>(), middle["upload_bytes"].get<int64_t>());
  EXPECT_EQ(some["upload_bytes"].get<int64_t>(), uploaded * 28 * 28);
  EXPECT_DOUBLE_EQ(some["collaborative_accuracy"].get<double>(), middle["accuracy"].get<double>());
  EXPECT_GT(some["latency_ms"]["collaborative"]["p50"].get<double>(), 0);
  EXPECT_TRUE(fs::exists(scratch / "infer" / "route_sweep.svg"));
  EXPECT_TRUE(fs::exists(scratch / "infer" / "route_sweep.png"));
}

TEST(InferEndToEnd, BadInputsAreRefusedNamingTheFileOrOption) {
  TempDir scratch;
  const fs::path out = scratch / "out";
  const std::string to_out = " --out " + quoted_path(out);
  expect_refused(testing::run_binary(SSCL_INFER_BINARY, quoted_path(scratch / "missing.pt") + to_out, scratch),
                 "missing.pt: no such model file", out);

  // A truncated model file, with its export.json beside it.
  const fs::path broken = scratch / "broken";
  fs::create_directories(broken);
  fs::copy_file(exports().edge / "export.json", broken / "export.json");
  const std::string bytes = testing::read_file(exports().edge / "model_fp32.pt");
  std::ofstream(broken / "model_fp32.pt", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  expect_refused(testing::run_binary(SSCL_INFER_BINARY, quoted_path(broken) + to_out, scratch),
                 (broken / "model_fp32.pt").string() + ": not a TorchScript model, or truncated", out);
  // A model without export.json.
  fs::remove(broken / "export.json");
  expect_refused(testing::run_binary(SSCL_INFER_BINARY, quoted_path(broken) + to_out, scratch),
                 (broken / "export.json").string() + ": no such file", out);

  // A cloud model of other tasks (its export.json says so).
  const fs::path other = scratch / "other";
  fs::create_directories(other);
  fs::copy_file(exports().cloud / "model_fp32.pt", other / "model_fp32.pt");
  auto info = nlohmann::json::parse(testing::read_file(exports().cloud / "export.json"));
  info["tasks"] = {{0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}};
  std::ofstream(other / "export.json") << info.dump();
  expect_refused(
      testing::run_binary(
          SSCL_INFER_BINARY,
          quoted_path(exports().edge) + " --cloud " + quoted_path(other) + " --route margin:0.1" + to_out, scratch),
      "--cloud " + (other / "model_fp32.pt").string() + ": its classes differ from the edge model's", out);
  expect_refused(testing::run_binary(SSCL_INFER_BINARY,
                                     quoted_path(exports().edge) + " --cloud " + quoted_path(exports().cloud) +
                                         " --route near:1" + to_out,
                                     scratch),
                 "--route 'near:1': unknown route", out);
  expect_refused(
      testing::run_binary(SSCL_INFER_BINARY, quoted_path(exports().edge) + " --route margin:0.1" + to_out, scratch),
      "--cloud and --route go together", out);
  expect_refused(testing::run_binary(
                     SSCL_INFER_BINARY,
                     quoted_path(exports().edge) + " --data " + quoted_path(scratch / "nowhere") + to_out, scratch),
                 "nowhere: no such config file", out);
}

}  // namespace
}  // namespace sscl
