#include "datasets/augment_pipeline.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include "core/error.h"

namespace sscl {
namespace {

cv::Mat gradient(int rows, int cols, int channels) {
  cv::Mat m(rows, cols, CV_8UC(channels));
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x)
      for (int c = 0; c < channels; ++c)
        m.ptr<uint8_t>(y)[x * channels + c] = static_cast<uint8_t>(7 * x + 5 * y + 40 * c);
  return m;
}

bool pipeline_same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::countNonZero(a.reshape(1) != b.reshape(1)) == 0;
}

TEST(AugmentPipeline, StrongWithoutRandAugmentOrCutoutIsTheWeakView) {
  AugmentOptions options;
  options.strong = "none";
  options.strong_cutout = 0;
  const AugmentPipeline pipeline(options, {100}, {50});
  const cv::Mat image = gradient(12, 12, 1);
  for (uint64_t seed = 0; seed < 10; ++seed) {
    Rng a(seed), b(seed);
    EXPECT_TRUE(pipeline_same(pipeline.weak(image, a), pipeline.strong(image, b)));
  }
}

TEST(AugmentPipeline, StrongViewIsReproducibleFromItsSeedAndDiffersFromWeak) {
  const AugmentPipeline pipeline(AugmentOptions{}, {100, 110, 120}, {50, 50, 50});
  const cv::Mat image = gradient(16, 16, 3);
  int differ = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Rng a(seed), b(seed), c(seed);
    const cv::Mat strong = pipeline.strong(image, a);
    EXPECT_EQ(strong.size(), image.size());
    EXPECT_EQ(strong.type(), image.type());
    EXPECT_TRUE(pipeline_same(strong, pipeline.strong(image, b)));
    differ += !pipeline_same(strong, pipeline.weak(image, c));
  }
  EXPECT_EQ(differ, 20) << "Cutout alone changes every strong view";
}

TEST(AugmentPipeline, CutoutFillsWithTheRoundedMean) {
  AugmentOptions options;
  options.strong = "none";
  options.crop_padding = 0;
  options.hflip = 0;
  options.strong_cutout = 3;
  const AugmentPipeline pipeline(options, {99.6}, {1});
  Rng rng(3);
  const cv::Mat strong = pipeline.strong(cv::Mat(8, 8, CV_8UC1, cv::Scalar(0)), rng);
  EXPECT_GE(cv::countNonZero(strong == 100), 4);
  EXPECT_EQ(cv::countNonZero(strong), cv::countNonZero(strong == 100));
}

TEST(AugmentPipeline, NormalizeUsesItsMeanAndStd) {
  const AugmentPipeline pipeline(AugmentOptions{}, {10}, {4});
  float out[2];
  cv::Mat image(1, 2, CV_8UC1);
  image.at<uint8_t>(0, 0) = 10;
  image.at<uint8_t>(0, 1) = 30;
  pipeline.normalize(image, out);
  EXPECT_FLOAT_EQ(out[0], 0.f);
  EXPECT_FLOAT_EQ(out[1], 5.f);
}

TEST(AugmentPipeline, ConfigErrorsNameTheKey) {
  auto error_of = [](const std::string& toml) {
    try {
      read_options<AugmentOptions>(Config::from_string(toml, "aug.toml").section("data.augment"));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("[data.augment]\nstrong = \"magic\"\n").find("data.augment.strong"), std::string::npos);
  EXPECT_NE(error_of("[data.augment]\nhflip = 1.5\n").find("data.augment.hflip"), std::string::npos);
  EXPECT_NE(error_of("[data.augment]\nstrong_cutout_mode = \"big\"\n").find("data.augment.strong_cutout_mode"),
            std::string::npos);
  EXPECT_EQ(error_of("[data.augment]\nstrong = \"none\"\nstrong_cutout_mode = \"random\"\n"), "no error");
}

}  // namespace
}  // namespace sscl
