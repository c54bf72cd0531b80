// The views of tools/pretrain: each step against what it must do on small
// hand-made images, and the batch function's seeding.
#include "datasets/simsiam_augment.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/core.hpp>

#include "core/error.h"

namespace sscl {
namespace {

cv::Mat gradient_image(int rows, int cols, int channels) {
  cv::Mat image(rows, cols, channels == 1 ? CV_8UC1 : CV_8UC3);
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x)
      for (int c = 0; c < channels; ++c)
        image.ptr<uint8_t>(y)[x * channels + c] = static_cast<uint8_t>(10 * y + 3 * x + 50 * c);
  return image;
}

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

TEST(SimSiamAugment, ResizedCropOfTheWholeImageIsTheImage) {
  const cv::Mat image = gradient_image(8, 8, 3);
  Rng rng(1);
  // Scale 1 and ratio 1 on a square image leave one box: the image itself.
  EXPECT_TRUE(same(random_resized_crop(image, 1.0, 1.0, 1.0, 1.0, rng), image));
}

TEST(SimSiamAugment, ResizedCropKeepsTheSizeAndZoomsIn) {
  const cv::Mat image = gradient_image(12, 10, 1);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Rng rng(seed);
    const cv::Mat out = random_resized_crop(image, 0.2, 0.5, 3.0 / 4, 4.0 / 3, rng);
    ASSERT_EQ(out.size(), image.size());
    // Rows step by 10 and columns by 3 in the image; a box of at most half the
    // area, resized up, steps by less in at least one direction.
    double min_v, max_v;
    cv::minMaxLoc(out, &min_v, &max_v);
    EXPECT_LT(max_v - min_v, 10 * 11 + 3 * 9) << seed;
  }
}

TEST(SimSiamAugment, HueShiftTurnsRedTowardsGreenAndLeavesGrayAlone) {
  const cv::Mat red(2, 2, CV_8UC3, cv::Scalar(255, 0, 0));  // RGB order
  const cv::Mat shifted = adjust_hue(red, 1.0 / 3);         // a third of a turn: green
  const auto px = shifted.at<cv::Vec3b>(0, 0);
  EXPECT_LE(px[0], 8);
  EXPECT_EQ(px[1], 255);
  EXPECT_LE(px[2], 8);
  EXPECT_TRUE(same(adjust_hue(red, 0.0), red));
  const cv::Mat gray = gradient_image(4, 4, 1);
  EXPECT_TRUE(same(adjust_hue(gray, 0.3), gray));
}

TEST(SimSiamAugment, JitterOfStrengthZeroIsTheIdentity) {
  const cv::Mat image = gradient_image(6, 6, 3);
  Rng rng(3);
  EXPECT_TRUE(same(color_jitter(image, {0, 0, 0, 0}, rng), image));
  // Brightness alone at strength 1: a factor drawn in [0, 2].
  const cv::Mat bright = color_jitter(image, {1, 0, 0, 0}, rng);
  EXPECT_FALSE(same(bright, image));
}

TEST(SimSiamAugment, GrayscaleAtProbabilityOneGivesEqualChannels) {
  SimSiamAugmentOptions options;
  options.grayscale_p = 1.0;
  const cv::Mat image = gradient_image(8, 8, 3);
  Rng rng(5);
  const cv::Mat out = simsiam_view(image, options, rng);
  for (int y = 0; y < out.rows; ++y)
    for (int x = 0; x < out.cols; ++x) {
      const auto px = out.at<cv::Vec3b>(y, x);
      ASSERT_TRUE(px[0] == px[1] && px[1] == px[2]) << y << "," << x;
    }
}

TEST(SimSiamAugment, BatchViewsFollowTheSeedAlone) {
  auto raw = torch::randint(0, 256, {6, 10, 10, 1}, torch::kByte);
  const SimSiamAugmentOptions options;
  const auto a = simsiam_views(raw, options, 11), b = simsiam_views(raw, options, 11),
             c = simsiam_views(raw, options, 12);
  EXPECT_EQ(a.sizes(), raw.sizes());
  EXPECT_EQ(a.scalar_type(), torch::kByte);
  EXPECT_TRUE(a.equal(b));
  EXPECT_FALSE(a.equal(c));
  // An image's view depends on its row, not on the rest of the batch.
  EXPECT_TRUE(simsiam_views(raw.slice(0, 0, 3), options, 11).equal(a.slice(0, 0, 3)));
  EXPECT_THROW(simsiam_views(torch::zeros({2, 4, 4, 2}, torch::kByte), options, 1), Error);
}

}  // namespace
}  // namespace sscl
