// The real Fashion-MNIST files from Debian's dataset-fashion-mnist package.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "datasets/image_dataset.h"
#include "tests/test_util.h"

namespace sscl {
namespace {

const char* kRoot = "/usr/share/datasets/fashion-mnist";

TEST(FashionMnist, RealFilesHaveTheirPublishedShape) {
  const auto splits = DatasetRegistry::get().at("fashion_mnist")(kRoot);
  EXPECT_EQ(splits.train->images.sizes(), (std::vector<int64_t>{60000, 28, 28, 1}));
  EXPECT_EQ(splits.test->images.sizes(), (std::vector<int64_t>{10000, 28, 28, 1}));
  EXPECT_EQ(splits.train->labels.min().item<int64_t>(), 0);
  EXPECT_EQ(splits.train->labels.max().item<int64_t>(), 9);
  // Balanced: 6000 training and 1000 test images per class.
  EXPECT_TRUE(torch::bincount(splits.train->labels).eq(6000).all().item<bool>());
  EXPECT_TRUE(torch::bincount(splits.test->labels).eq(1000).all().item<bool>());
  EXPECT_EQ(splits.class_names.size(), 10u);
}

TEST(FashionMnist, NormalisationConstantsMatchTheTrainingImages) {
  const auto splits = DatasetRegistry::get().at("fashion_mnist")(kRoot);
  const auto pixels = splits.train->images.to(torch::kDouble);
  EXPECT_NEAR(pixels.mean().item<double>(), splits.mean[0], 0.01);
  EXPECT_NEAR(pixels.std(/*unbiased=*/false).item<double>(), splits.std[0], 0.01);
}

TEST(FashionMnist, MissingDirectoryAndFileAreNamed) {
  try {
    DatasetRegistry::get().at("fashion_mnist")("/nonexistent/fmnist");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "data.root '/nonexistent/fmnist': directory not found");
  }
  testing::TempDir dir;
  try {
    DatasetRegistry::get().at("fashion_mnist")(dir.path().string());
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("train-images-idx3-ubyte.gz: file not found"), std::string::npos);
  }
}

TEST(FashionMnist, LabelOutOfRangeIsRejected) {
  testing::TempDir dir;
  testing::write_tiny_fashion_mnist(dir.path(), 2, 1);
  testing::write_idx(dir / "t10k-labels-idx1-ubyte", {10}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 12});
  try {
    DatasetRegistry::get().at("fashion_mnist")(dir.path().string());
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("labels in [0, 12] outside [0, 10)"), std::string::npos) << e.what();
  }
}

// Regression (fuzz_fashion_mnist): 3x2 test images beside 2x2 training images
// were accepted, and only the first evaluation failed, inside LibTorch.
TEST(FashionMnist, TestImagesOfAnotherSizeAreRejected) {
  testing::TempDir dir;
  testing::write_tiny_fashion_mnist(dir.path(), 1, 1);
  testing::write_idx(dir / "t10k-images-idx3-ubyte", {10, 28, 27}, std::vector<uint8_t>(10 * 28 * 27, 7));
  try {
    DatasetRegistry::get().at("fashion_mnist")(dir.path().string());
    FAIL();
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "t10k-images-idx3-ubyte").string() +
                                         ": images are 28x27 (rows x columns), but the training images are 28x28 "
                                         "(rows x columns)");
  }
}

}  // namespace
}  // namespace sscl
