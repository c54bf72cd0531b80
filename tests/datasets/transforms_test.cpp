#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include "datasets/transforms.h"

namespace sscl {
namespace {

cv::Mat ramp(int rows, int cols) {
  cv::Mat m(rows, cols, CV_8UC1);
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x) m.at<uint8_t>(y, x) = static_cast<uint8_t>(1 + y * cols + x);
  return m;
}

TEST(Transforms, RandomCropIsAShiftedWindowOfThePaddedImage) {
  const cv::Mat image = ramp(4, 4);
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
