// TensorBoard's event files: the CRC and the framing against the format's
// published values, the reader on damaged and truncated files, and a training
// run's file checked record by record against its metrics.jsonl.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "tests/tools/run_binary.h"
#include "tools/tensorboard/event_file.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

TEST(TensorBoard, Crc32cAndTheMaskAreTheFormatsOwn) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the CRC-32C check value
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(masked_crc32c(""), 0xa282ead8u);  // ((0 >> 15) | (0 << 17)) + the mask's delta
  const std::string record = tfrecord("abc");
  ASSERT_EQ(record.size(), 8u + 4u + 3u + 4u);
  EXPECT_EQ(record.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));  // the length, little-endian
  EXPECT_EQ(record.substr(12, 3), "abc");
}

fs::path write_small_file(const TempDir& dir) {
  const auto file = dir / "tb" / "events.out.tfevents.1.test";
  EventFileWriter writer(file);
  writer.scalars(5, {{"train/loss", 0.25}, {"train/lr", 0.03}});
  writer.text(0, "config", "[train]\nseed = 0\n");
  writer.image(5, "matrix", cv::Mat(6, 4, CV_8UC3, cv::Scalar(10, 20, 30)));
  return file;
}

TEST(TensorBoard, WhatIsWrittenReadsBack) {
  TempDir dir;
  const auto file = write_small_file(dir);
  const EventFile read = read_event_file(file);
  EXPECT_EQ(read.error, "");
  EXPECT_EQ(read.good_bytes, fs::file_size(file));
  ASSERT_EQ(read.events.size(), 4u);
  EXPECT_EQ(read.events[0].file_version, "brain.Event:2");
  ASSERT_EQ(read.events[1].values.size(), 2u);
  EXPECT_EQ(read.events[1].step, 5);
  EXPECT_EQ(read.events[1].values[0].tag, "train/loss");
  EXPECT_EQ(read.events[1].values[0].kind, "scalar");
  EXPECT_FLOAT_EQ(static_cast<float>(read.events[1].values[0].scalar), 0.25f);
  EXPECT_GT(read.events[1].wall_time, 1.7e9);  // seconds since 1970
  EXPECT_EQ(read.events[2].values[0].kind, "text");
  EXPECT_EQ(read.events[2].values[0].text, "[train]\nseed = 0\n");
  const auto& image = read.events[3].values[0];
  EXPECT_EQ(image.kind, "image");
  EXPECT_EQ(image.height, 6);
  EXPECT_EQ(image.width, 4);
  const cv::Mat decoded = cv::imdecode(std::vector<uchar>(image.png.begin(), image.png.end()), cv::IMREAD_COLOR);
  ASSERT_EQ(decoded.rows, 6);
  EXPECT_EQ(decoded.at<cv::Vec3b>(2, 2), cv::Vec3b(10, 20, 30));
  // A second writer appends without a second file_version.
  EventFileWriter(file).scalars(6, {{"train/loss", 0.5}});
  EXPECT_EQ(read_event_file(file).events.size(), 5u);
}

TEST(TensorBoard, DamagedOrTruncatedRecordsAreNamedAndWhatCameBeforeIsKept) {
  TempDir dir;
  const auto file = write_small_file(dir);
  const EventFile whole = read_event_file(file);
  std::string bytes = testing::read_file(file);
  // Record 3 (the text) starts where the first two end; flip a byte of its data.
  const uint64_t third = [&] {
    uint64_t at = 0;
    for (int r = 0; r < 2; ++r) {
      uint64_t length = 0;
      for (int i = 0; i < 8; ++i) length |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
      at += 12 + length + 4;
    }
    return at;
  }();
  std::string damaged = bytes;
  damaged[third + 14] ^= 0x01;
  testing::write_text(dir / "damaged", damaged);
  const EventFile d = read_event_file(dir / "damaged");
  EXPECT_EQ(d.events.size(), 2u);
  EXPECT_NE(d.error.find("damaged: record 3 (byte " + std::to_string(third) + "): the data's CRC does not match"),
            std::string::npos)
      << d.error;
  // Cut in the middle of the last record's data.
  testing::write_text(dir / "truncated", bytes.substr(0, bytes.size() - 10));
  const EventFile t = read_event_file(dir / "truncated");
  EXPECT_EQ(t.events.size(), 3u);
  EXPECT_NE(t.error.find("truncated: record 4"), std::string::npos) << t.error;
  EXPECT_NE(t.error.find("truncated: "), std::string::npos) << t.error;
  EXPECT_THROW(read_event_file(dir / "absent"), Error);
}

// The one event file of a run directory.
fs::path event_file_of(const fs::path& run_dir) {
  for (const auto& entry : fs::directory_iterator(run_dir / "tb")) return entry.path();
  return {};
}

TEST(TensorBoard, ATrainingRunsEventsMatchItsMetricsJsonl) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 8, 2);
  const auto run = dir / "run";
  const auto p =
      testing::run_train(testing::config_path("configs/fixmatch/fixmatch_small_cnn_fmnist5.toml") + " --work-dir '" +
                             run.string() + "' --cfg-options data.root='" + (dir / "data").string() +
                             "' train.iters_per_task=4 log.interval=2 train.threads=1 model.width=8 "
                             "checkpoint.enabled=false log.tensorboard=true",
                         dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const EventFile tb = read_event_file(event_file_of(run));
  ASSERT_EQ(tb.error, "");
  ASSERT_FALSE(tb.events.empty());
  EXPECT_EQ(tb.events[0].file_version, "brain.Event:2");
  // step -> tag -> value, and the image sizes.
  std::map<int64_t, std::map<std::string, double>> scalars;
  std::string config_text;
  int images = 0;
  for (const auto& e : tb.events)
    for (const auto& v : e.values) {
      if (v.kind == "scalar") scalars[e.step][v.tag] = v.scalar;
      if (v.kind == "text" && v.tag == "config") config_text = v.text;
      if (v.kind == "image") {
        ++images;
        EXPECT_EQ(v.height, 5 * 48);
        const cv::Mat png = cv::imdecode(std::vector<uchar>(v.png.begin(), v.png.end()), cv::IMREAD_COLOR);
        EXPECT_EQ(png.cols, 5 * 48);
      }
    }
  EXPECT_NE(config_text.find("[train]"), std::string::npos) << config_text;
  EXPECT_EQ(images, 2 * 5);  // task-IL and class-IL matrices after each of the 5 tasks
  std::ifstream lines(run / "metrics.jsonl");
  int train_rows = 0, eval_rows = 0;
  for (std::string line; std::getline(lines, line);) {
    const auto row = nlohmann::json::parse(line);
    if (row["type"] == "train") {
      ++train_rows;
      const auto& at = scalars[row["global_iter"].get<int64_t>()];
      ASSERT_TRUE(at.count("train/loss")) << line;
      EXPECT_FLOAT_EQ(static_cast<float>(at.at("train/loss")), row["loss"].get<float>());
      EXPECT_FLOAT_EQ(static_cast<float>(at.at("train/lr")), row["lr"].get<float>());
      EXPECT_FLOAT_EQ(static_cast<float>(at.at("time/ms_per_iter")), row["ms_per_iter"].get<float>());
      for (const auto& [name, value] : row["losses"].items())
        EXPECT_FLOAT_EQ(static_cast<float>(at.at("train/loss/" + name)), value.get<float>()) << name;
      EXPECT_TRUE(at.count("method/semi.mask_rate") || at.count("method/mask_rate")) << line;
    } else {
      const int task = row["task"].get<int>();
      const auto& at = scalars[(task + 1) * 4];  // after the task's last iteration
      ++eval_rows;
      EXPECT_FLOAT_EQ(static_cast<float>(at.at("task_il/average")), row["task_il_average"].get<float>());
      EXPECT_FLOAT_EQ(static_cast<float>(at.at("class_il/average")), row["class_il_average"].get<float>());
      for (int j = 0; j <= task; ++j)
        EXPECT_FLOAT_EQ(static_cast<float>(at.at("class_il/task_" + std::to_string(j + 1))),
                        row["class_il"][j].get<float>());
    }
  }
  EXPECT_EQ(train_rows, 10);  // iterations 2 and 4 of each task
  EXPECT_EQ(eval_rows, 5);
}

}  // namespace
}  // namespace sscl
