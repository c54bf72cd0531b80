#include "datasets/transforms.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

namespace sscl {
namespace {

cv::Mat transforms_ramp(int rows, int cols) {
  cv::Mat m(rows, cols, CV_8UC1);
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x) m.at<uint8_t>(y, x) = static_cast<uint8_t>(1 + y * cols + x);
  return m;
}

TEST(Transforms, RandomCropIsAShiftedWindowOfThePaddedImage) {
  const cv::Mat image = transforms_ramp(4, 4);
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Rng rng(seed);
    const cv::Mat out = random_crop(image, 2, rng);
    ASSERT_EQ(out.size(), image.size());
    // Recover the offset from any surviving pixel and check every pixel with it.
    int dy = 99, dx = 99;
    for (int y = 0; y < 4 && dy == 99; ++y)
      for (int x = 0; x < 4; ++x)
        if (out.at<uint8_t>(y, x) != 0) {
          const int v = out.at<uint8_t>(y, x) - 1;
          dy = v / 4 - y;
          dx = v % 4 - x;
          break;
        }
    ASSERT_NE(dy, 99);
    EXPECT_LE(std::abs(dy), 2);
    EXPECT_LE(std::abs(dx), 2);
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) {
        const int sy = y + dy, sx = x + dx;
        const int expected = (sy >= 0 && sy < 4 && sx >= 0 && sx < 4) ? 1 + sy * 4 + sx : 0;
        EXPECT_EQ(out.at<uint8_t>(y, x), expected);
      }
  }
}

TEST(Transforms, FlipMirrorsColumnsAndKeepsChannels) {
  cv::Mat image(1, 3, CV_8UC3);
  for (int x = 0; x < 3; ++x) image.at<cv::Vec3b>(0, x) = cv::Vec3b(x, 10 + x, 20 + x);
  Rng rng(1);
  random_hflip(image, 1.0, rng);
  EXPECT_EQ(image.at<cv::Vec3b>(0, 0), cv::Vec3b(2, 12, 22));
  EXPECT_EQ(image.at<cv::Vec3b>(0, 2), cv::Vec3b(0, 10, 20));
  random_hflip(image, 0.0, rng);
  EXPECT_EQ(image.at<cv::Vec3b>(0, 0), cv::Vec3b(2, 12, 22));
}

TEST(Transforms, CutoutFillsAtMostASquare) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    cv::Mat image(8, 8, CV_8UC1, cv::Scalar(200));
    Rng rng(seed);
    cutout(image, 3, cv::Scalar(7), rng);
    const int filled = 64 - cv::countNonZero(image != 7);
    EXPECT_GE(filled, 4);  // a 3x3 square clipped at a corner keeps 2x2
    EXPECT_LE(filled, 9);
  }
}

TEST(Transforms, RandomSizeCutoutSidesSpanOneToHalfTheImage) {
  std::set<int> sides;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    cv::Mat image(16, 16, CV_8UC1, cv::Scalar(200));
    Rng rng(seed);
    random_size_cutout(image, 0.5, cv::Scalar(7), rng);
    const cv::Mat filled = image == 7;
    const cv::Rect box = cv::boundingRect(filled);
    ASSERT_EQ(cv::countNonZero(filled), box.area()) << "a filled rectangle";
    ASSERT_LE(std::max(box.width, box.height), 8);
    if (box.x > 0 && box.y > 0 && box.x + box.width < 16 && box.y + box.height < 16) {
      ASSERT_EQ(box.width, box.height) << "unclipped squares are square";
      sides.insert(box.width);
    }
  }
  EXPECT_TRUE(sides.count(1) && sides.count(8)) << "both ends of [1, 8] drawn";
}

TEST(Transforms, ResizeAveragesWhenShrinkingAndKeepsFlatImagesFlat) {
  cv::Mat image(4, 4, CV_8UC1);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x)
      image.at<uint8_t>(y, x) = static_cast<uint8_t>(10 * (2 * (y / 2) + x / 2) + (x + y) % 2 * 4);
  const cv::Mat small = resize(image, 2, 2);  // each 2x2 block: v, v+4, v+4, v -> v+2
  ASSERT_EQ(small.size(), cv::Size(2, 2));
  EXPECT_EQ(small.at<uint8_t>(0, 0), 2);
  EXPECT_EQ(small.at<uint8_t>(0, 1), 12);
  EXPECT_EQ(small.at<uint8_t>(1, 0), 22);
  EXPECT_EQ(small.at<uint8_t>(1, 1), 32);
  const cv::Mat large = resize(cv::Mat(3, 5, CV_8UC3, cv::Scalar(9, 80, 200)), 6, 10);
  ASSERT_EQ(large.size(), cv::Size(10, 6));
  ASSERT_EQ(large.channels(), 3);
  EXPECT_EQ(cv::countNonZero(large.reshape(1) != cv::Mat(6, 10, CV_8UC3, cv::Scalar(9, 80, 200)).reshape(1)), 0);
}

TEST(Transforms, NormalizeWritesChannelPlanes) {
  cv::Mat image(1, 2, CV_8UC3);
  image.at<cv::Vec3b>(0, 0) = cv::Vec3b(10, 20, 30);
  image.at<cv::Vec3b>(0, 1) = cv::Vec3b(50, 60, 70);
  float out[6];
  normalize_to_chw(image, {10, 20, 30}, {2, 4, 8}, out);
  const float expected[6] = {0, 20, 0, 10, 0, 5};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(out[i], expected[i]);
}

}  // namespace
}  // namespace sscl
