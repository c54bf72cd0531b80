// Every expected pixel below is worked out by hand from Pillow's definitions
// (see datasets/augment_ops.h), not produced by the code under test.
#include "datasets/augment_ops.h"

#include <gtest/gtest.h>

#include <array>
#include <initializer_list>
#include <opencv2/core.hpp>
#include <vector>

#include "core/error.h"

namespace sscl {
namespace {

cv::Mat gray(int rows, int cols, std::initializer_list<int> values) {
  cv::Mat m(rows, cols, CV_8UC1);
  EXPECT_EQ(values.size(), m.total());
  int i = 0;
  for (int v : values) m.at<uint8_t>(i / cols, i % cols) = static_cast<uint8_t>(v), ++i;
  return m;
}

cv::Mat rgb(int rows, int cols, std::initializer_list<std::array<int, 3>> values) {
  cv::Mat m(rows, cols, CV_8UC3);
  EXPECT_EQ(values.size(), m.total());
  int i = 0;
  for (const auto& v : values) m.at<cv::Vec3b>(i / cols, i % cols) = cv::Vec3b(v[0], v[1], v[2]), ++i;
  return m;
}

// 1..rows*cols in row-major order.
cv::Mat ops_ramp(int rows, int cols) {
  cv::Mat m(rows, cols, CV_8UC1);
  for (int i = 0; i < rows * cols; ++i) m.at<uint8_t>(i / cols, i % cols) = static_cast<uint8_t>(i + 1);
  return m;
}

::testing::AssertionResult same(const cv::Mat& actual, const cv::Mat& expected) {
  if (actual.size() != expected.size() || actual.type() != expected.type())
    return ::testing::AssertionFailure() << "size/type differ: " << actual.size() << " vs " << expected.size();
  if (cv::countNonZero(actual.reshape(1) != expected.reshape(1)) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\nactual:\n" << actual << "\nexpected:\n" << expected;
}

TEST(AugmentOps, InvertGrayAndRgb) {
  EXPECT_TRUE(same(invert(gray(1, 3, {0, 100, 255})), gray(1, 3, {255, 155, 0})));
  EXPECT_TRUE(same(invert(rgb(1, 1, {{1, 2, 250}})), rgb(1, 1, {{254, 253, 5}})));
}

TEST(AugmentOps, PosterizeKeepsTheTopBits) {
  const cv::Mat image = gray(1, 4, {0xAB, 0x0F, 0xFF, 0x80});
  EXPECT_TRUE(same(posterize(image, 4), gray(1, 4, {0xA0, 0x00, 0xF0, 0x80})));
  EXPECT_TRUE(same(posterize(image, 1), gray(1, 4, {0x80, 0x00, 0x80, 0x80})));
  EXPECT_TRUE(same(posterize(image, 0), gray(1, 4, {0, 0, 0, 0})));
  EXPECT_TRUE(same(posterize(image, 8), image));
  EXPECT_TRUE(same(posterize(rgb(1, 1, {{0xAB, 0x37, 0xC9}}), 2), rgb(1, 1, {{0x80, 0x00, 0xC0}})));
  EXPECT_THROW(posterize(image, 9), Error);
}

TEST(AugmentOps, SolarizeInvertsFromTheThresholdUp) {
  const cv::Mat image = gray(1, 4, {0, 127, 128, 200});
  EXPECT_TRUE(same(solarize(image, 128), gray(1, 4, {0, 127, 127, 55})));
  EXPECT_TRUE(same(solarize(image, 256), image));
  EXPECT_TRUE(same(solarize(image, 0), gray(1, 4, {255, 128, 127, 55})));
  EXPECT_TRUE(same(solarize(rgb(1, 1, {{10, 100, 250}}), 77), rgb(1, 1, {{10, 155, 5}})));
}

TEST(AugmentOps, SolarizeAddRaisesOnlyValuesBelowTheThreshold) {
  const cv::Mat image = gray(1, 5, {27, 127, 128, 200, 100});
  EXPECT_TRUE(same(solarize_add(image, 100), gray(1, 5, {127, 227, 128, 200, 200})));
  EXPECT_TRUE(same(solarize_add(image, 200), gray(1, 5, {227, 255, 128, 200, 255})));  // clipped
  EXPECT_TRUE(same(solarize_add(image, 100, 50), gray(1, 5, {127, 127, 128, 200, 100})));
  EXPECT_TRUE(same(solarize_add(image, 0), image));
  EXPECT_TRUE(same(solarize_add(rgb(1, 1, {{10, 127, 128}}), 5), rgb(1, 1, {{15, 132, 128}})));
}

TEST(AugmentOps, AutoContrastStretchesEachChannelOnItsOwn) {
  // 50..135 spans 85 levels: scale 3, so v -> 3 (v - 50).
  EXPECT_TRUE(same(auto_contrast(gray(2, 2, {50, 60, 80, 135})), gray(2, 2, {0, 30, 90, 255})));
  // R as above; G constant (unchanged); B 10..20: scale 25.5.
  const cv::Mat image = rgb(2, 2, {{50, 77, 10}, {60, 77, 20}, {80, 77, 10}, {135, 77, 20}});
  EXPECT_TRUE(same(auto_contrast(image), rgb(2, 2, {{0, 77, 0}, {30, 77, 255}, {90, 77, 0}, {255, 77, 255}})));
  const cv::Mat flat(3, 3, CV_8UC1, cv::Scalar(42));
  EXPECT_TRUE(same(auto_contrast(flat), flat));
}

TEST(AugmentOps, AutoContrastRoundsAsPillowDoes) {
  // Pillow: scale = 255/9, lut = int(v * scale - scale); 10 * scale - scale is
  // 254.99999999999997 in doubles, so the top value becomes 254, not 255.
  EXPECT_TRUE(same(auto_contrast(gray(1, 3, {1, 5, 10})), gray(1, 3, {0, 113, 254})));
}

TEST(AugmentOps, EqualizeFollowsPillowsHistogramSteps) {
  // 20x32 = 640 pixels: 85 x 10, 85 x 50, 340 x 100, 130 x 200 (the last value).
  // step = (640 - 130) / 255 = 2, n starts at step / 2 = 1, lut[v] = (1 + pixels below v) / 2:
  //   10 -> 1/2 = 0, 50 -> 86/2 = 43, 100 -> 171/2 = 85, 200 -> 511/2 = 255.
  // Blue: the same counts at 3, 4, 250, 251. Green: one value, so unchanged.
  cv::Mat image(20, 32, CV_8UC3), expected(20, 32, CV_8UC3);
  for (int i = 0; i < 640; ++i) {
    const int bucket = i < 85 ? 0 : i < 170 ? 1 : i < 510 ? 2 : 3;
    const int red[] = {10, 50, 100, 200}, blue[] = {3, 4, 250, 251}, out[] = {0, 43, 85, 255};
    image.at<cv::Vec3b>(i / 32, i % 32) = cv::Vec3b(red[bucket], 99, blue[bucket]);
    expected.at<cv::Vec3b>(i / 32, i % 32) = cv::Vec3b(out[bucket], 99, out[bucket]);
  }
  EXPECT_TRUE(same(equalize(image), expected));
  cv::Mat red;
  cv::extractChannel(image, red, 0);
  cv::Mat red_expected;
  cv::extractChannel(expected, red_expected, 0);
  EXPECT_TRUE(same(equalize(red), red_expected));
}

TEST(AugmentOps, EqualizeLeavesImagesUnderAStepUnchanged) {
  // 9 pixels: step = (9 - 1) / 255 = 0, so Pillow keeps the identity lut.
  const cv::Mat image = ops_ramp(3, 3);
  EXPECT_TRUE(same(equalize(image), image));
}

TEST(AugmentOps, BrightnessBlendsWithBlackAndTruncates) {
  const cv::Mat image = gray(1, 4, {101, 200, 0, 255});
  EXPECT_TRUE(same(brightness(image, 0.0), gray(1, 4, {0, 0, 0, 0})));
  EXPECT_TRUE(same(brightness(image, 1.0), image));
  EXPECT_TRUE(same(brightness(image, 0.5), gray(1, 4, {50, 100, 0, 127})));   // 50.5 -> 50
  EXPECT_TRUE(same(brightness(image, 1.5), gray(1, 4, {151, 255, 0, 255})));  // 151.5 -> 151, 300 -> 255
  EXPECT_TRUE(same(brightness(rgb(1, 1, {{101, 200, 3}}), 0.5), rgb(1, 1, {{50, 100, 1}})));
}

TEST(AugmentOps, ContrastBlendsWithTheRoundedGrayMean) {
  // mean 101 / 4 = 25.25 -> int(25.75) = 25.
  const cv::Mat image = gray(1, 4, {10, 20, 30, 41});
  EXPECT_TRUE(same(contrast(image, 0.0), gray(1, 4, {25, 25, 25, 25})));
  EXPECT_TRUE(same(contrast(image, 1.0), image));
  EXPECT_TRUE(same(contrast(image, 0.5), gray(1, 4, {17, 22, 27, 33})));  // 17.5, 22.5, 27.5, 33
  EXPECT_TRUE(same(contrast(image, 2.0), gray(1, 4, {0, 15, 35, 57})));   // -5 clipped to 0
  // Pillow's L of red, green, blue, white: 76, 150, 29, 255 -> mean 127.5 -> 128 in every channel.
  const cv::Mat colour = rgb(2, 2, {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}});
  EXPECT_TRUE(same(contrast(colour, 0.0), cv::Mat(2, 2, CV_8UC3, cv::Scalar::all(128))));
  EXPECT_TRUE(same(contrast(colour, 0.5),
                   rgb(2, 2, {{191, 64, 64}, {64, 191, 64}, {64, 64, 191}, {191, 191, 191}})));  // 128 +- 63.5
}

TEST(AugmentOps, ColorBlendsWithPillowsGray) {
  // L(red) = (255 * 19595 + 32768) >> 16 = 76; L(green) = 150 (the 587/1000 weight truncated would give 149).
  const cv::Mat image = rgb(1, 2, {{255, 0, 0}, {0, 255, 0}});
  EXPECT_TRUE(same(color(image, 0.0), rgb(1, 2, {{76, 76, 76}, {150, 150, 150}})));
  EXPECT_TRUE(same(color(image, 1.0), image));
  EXPECT_TRUE(same(color(image, 0.5), rgb(1, 2, {{165, 38, 38}, {75, 202, 75}})));  // 165.5, 202.5 truncated
  EXPECT_TRUE(same(color(image, 2.0), rgb(1, 2, {{255, 0, 0}, {0, 255, 0}})));      // clipped both ways
  const cv::Mat plain = ops_ramp(2, 3);
  EXPECT_TRUE(same(color(plain, 0.0), plain)) << "a gray image is its own gray version";
}

TEST(AugmentOps, SharpnessBlendsWithPillowsSmoothFilter) {
  // SMOOTH of the interior = (3x3 sum + 4 * centre + 6) / 13:
  //   (1,1): (100 + 400 + 6) / 13 = 38;  (1,2), (2,1): (100 + 6) / 13 = 8 (7.7 rounded);
  //   (2,2): (100 + 50 + 6) / 13 = 12. The border keeps its values.
  const cv::Mat image = gray(4, 4, {0, 0, 0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 50});
  EXPECT_TRUE(same(sharpness(image, 0.0), gray(4, 4, {0, 0, 0, 0, 0, 38, 8, 0, 0, 8, 12, 0, 0, 0, 0, 50})));
  EXPECT_TRUE(same(sharpness(image, 1.0), image));
  // 38 + 0.5 * 62 = 69; 8 - 4 = 4; 12 - 6 = 6.
  EXPECT_TRUE(same(sharpness(image, 0.5), gray(4, 4, {0, 0, 0, 0, 0, 69, 4, 0, 0, 4, 6, 0, 0, 0, 0, 50})));
  // 38 + 2 * 62 = 162; 8 - 16 and 12 - 24 clip to 0.
  EXPECT_TRUE(same(sharpness(image, 2.0), gray(4, 4, {0, 0, 0, 0, 0, 162, 0, 0, 0, 0, 0, 0, 0, 0, 0, 50})));
  // Channels are filtered apart: R as above, G flat, B a single 13 at (2,2).
  cv::Mat colour(4, 4, CV_8UC3), expected(4, 4, CV_8UC3);
  const cv::Mat smooth_red = sharpness(image, 0.0);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) {
      const bool inner = y >= 1 && y <= 2 && x >= 1 && x <= 2;
      colour.at<cv::Vec3b>(y, x) = cv::Vec3b(image.at<uint8_t>(y, x), 200, y == 2 && x == 2 ? 13 : 0);
      expected.at<cv::Vec3b>(y, x) =
          cv::Vec3b(smooth_red.at<uint8_t>(y, x), 200, inner ? (y == 2 && x == 2 ? 5 : 1) : 0);
    }
  EXPECT_TRUE(same(sharpness(colour, 0.0), expected));
  const cv::Mat thin = ops_ramp(2, 5);
  EXPECT_TRUE(same(sharpness(thin, 0.0), thin)) << "no interior: all border";
}

TEST(AugmentOps, RotateIsCounterClockwiseAboutTheCentre) {
  const cv::Mat image = ops_ramp(3, 3);
  const cv::Scalar fill(200);
  EXPECT_TRUE(same(rotate(image, 90, fill), gray(3, 3, {3, 6, 9, 2, 5, 8, 1, 4, 7})));
  EXPECT_TRUE(same(rotate(image, -90, fill), gray(3, 3, {7, 4, 1, 8, 5, 2, 9, 6, 3})));
  EXPECT_TRUE(same(rotate(image, 180, fill), gray(3, 3, {9, 8, 7, 6, 5, 4, 3, 2, 1})));
  EXPECT_TRUE(same(rotate(image, 0, fill), image));
  EXPECT_TRUE(same(rotate(image, 360, fill), image));
  const cv::Mat square = ops_ramp(4, 4);  // even size: the centre lies between pixels
  EXPECT_TRUE(same(rotate(square, 90, fill), gray(4, 4, {4, 8, 12, 16, 3, 7, 11, 15, 2, 6, 10, 14, 1, 5, 9, 13})));
}

TEST(AugmentOps, RotateFillsWhatComesFromOutside) {
  // 2 rows x 4 columns by 90 degrees: output (x, y) reads input column 2 - y,
  // row x - 1; columns 0 and 3 read rows -1 and 2, outside, hence the fill.
  const cv::Mat image =
      rgb(2, 4, {{1, 1, 1}, {2, 2, 2}, {3, 3, 3}, {4, 4, 4}, {5, 5, 5}, {6, 6, 6}, {7, 7, 7}, {8, 8, 8}});
  const std::array<int, 3> f{7, 8, 9};
  EXPECT_TRUE(same(rotate(image, 90, cv::Scalar(7, 8, 9)),
                   rgb(2, 4, {f, {3, 3, 3}, {7, 7, 7}, f, f, {2, 2, 2}, {6, 6, 6}, f})));
}

TEST(AugmentOps, TranslateMovesWholePixelsAndFills) {
  const cv::Mat image = ops_ramp(3, 4);
  EXPECT_TRUE(same(translate_x(image, 1, cv::Scalar(0)), gray(3, 4, {2, 3, 4, 0, 6, 7, 8, 0, 10, 11, 12, 0})));
  EXPECT_TRUE(same(translate_x(image, -2, cv::Scalar(99)), gray(3, 4, {99, 99, 1, 2, 99, 99, 5, 6, 99, 99, 9, 10})));
  EXPECT_TRUE(same(translate_y(image, 1, cv::Scalar(0)), gray(3, 4, {5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0})));
  EXPECT_TRUE(same(translate_x(image, 0, cv::Scalar(0)), image));
  const cv::Mat colour = rgb(2, 1, {{1, 2, 3}, {4, 5, 6}});
  EXPECT_TRUE(same(translate_y(colour, -1, cv::Scalar(7, 8, 9)), rgb(2, 1, {{7, 8, 9}, {1, 2, 3}})));
}

TEST(AugmentOps, TranslateByHalfAPixelInterpolatesBetweenNeighbours) {
  // A linear ramp is reproduced by the symmetric cubic weights at the midpoint.
  cv::Mat image(3, 8, CV_8UC1);
  for (int x = 0; x < 8; ++x) image.col(x).setTo(10 * x);
  const cv::Mat out = translate_x(image, 0.5, cv::Scalar(255));
  for (int y = 0; y < 3; ++y) {
    EXPECT_EQ(out.at<uint8_t>(y, 2), 25);
    EXPECT_EQ(out.at<uint8_t>(y, 3), 35);
    EXPECT_EQ(out.at<uint8_t>(y, 4), 45);
  }
}

TEST(AugmentOps, ShearZeroIsIdentity) {
  cv::Mat image(3, 5, CV_8UC3);
  cv::randu(image, 0, 256);
  EXPECT_TRUE(same(shear_x(image, 0.0, cv::Scalar(1, 2, 3)), image));
  EXPECT_TRUE(same(shear_y(image, 0.0, cv::Scalar(1, 2, 3)), image));
}

TEST(AugmentOps, ShearReadsFromPillowsCornerCoordinates) {
  // Shear 2: row y reads x + 2 (y + 0.5) in pixel indices, i.e. 1 and 3 to the right.
  EXPECT_TRUE(same(shear_x(ops_ramp(2, 4), 2.0, cv::Scalar(0)), gray(2, 4, {2, 3, 4, 0, 8, 0, 0, 0})));
  // Columns likewise: column x reads row y + 2 (x + 0.5).
  EXPECT_TRUE(same(shear_y(ops_ramp(4, 2), 2.0, cv::Scalar(0)), gray(4, 2, {3, 8, 5, 0, 7, 0, 0, 0})));
  // Negative shear reads to the left: row 0 from x - 1, row 1 from x - 3.
  EXPECT_TRUE(same(shear_x(ops_ramp(2, 4), -2.0, cv::Scalar(50)), gray(2, 4, {50, 1, 2, 3, 50, 50, 50, 5})));
}

TEST(AugmentOps, RejectsImagesOtherThanUint8GrayOrRgb) {
  EXPECT_THROW(invert(cv::Mat(2, 2, CV_32FC1, cv::Scalar(0))), Error);
  EXPECT_THROW(equalize(cv::Mat(2, 2, CV_8UC4, cv::Scalar(0))), Error);
  EXPECT_THROW(rotate(cv::Mat(), 10, cv::Scalar(0)), Error);
  EXPECT_THROW(sharpness(cv::Mat(2, 2, CV_16UC1, cv::Scalar(0)), 0.5), Error);
}

}  // namespace
}  // namespace sscl
