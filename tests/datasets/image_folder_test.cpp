// The image-folder layout written by tests/dataset_writers.h (lossless PNG/BMP, so
// pixels are compared exactly).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "datasets/image_dataset.h"
#include "datasets/image_decode.h"
#include "tests/dataset_writers.h"
#include "tests/test_util.h"

namespace sscl {
namespace {

using ::sscl::testing::SyntheticImages;
using ::sscl::testing::TempDir;
namespace fs = std::filesystem;

SyntheticImages folder_spec() {
  SyntheticImages spec;
  spec.classes = 3;
  spec.train_per_class = 4;
  spec.test_per_class = 2;
  spec.rows = 5;  // not square: a swapped height and width shows
  spec.cols = 7;
  return spec;
}

DatasetSplits load_folder(const TempDir& dir) { return DatasetRegistry::get().at("image_folder")(dir.path().string()); }

std::string folder_error_of(const TempDir& dir) {
  try {
    load_folder(dir);
  } catch (const DataError& e) {
    return e.what();
  }
  return "no error";
}

TEST(ImageFolder, ReadsRgbPngsExactly) {
  TempDir dir;
  const auto written = testing::write_image_folder(dir.path(), folder_spec());
  const auto splits = load_folder(dir);
  EXPECT_EQ(splits.name, "image_folder");
  ASSERT_EQ(splits.train->images.sizes(), (std::vector<int64_t>{12, 5, 7, 3}));
  EXPECT_TRUE(splits.train->images.is_contiguous());
  EXPECT_TRUE(torch::equal(splits.train->images, written.train.images));
  EXPECT_TRUE(torch::equal(splits.train->labels, written.train.labels));
  EXPECT_TRUE(torch::equal(splits.test->images, written.test.images));
  EXPECT_TRUE(torch::equal(splits.test->labels, written.test.labels));
  EXPECT_EQ(splits.train->num_classes, 3);
  EXPECT_EQ(splits.test->num_classes, 3);
  EXPECT_EQ(splits.class_names, written.class_dirs);
  // Statistics of the training pixels, per channel, population standard deviation.
  const auto pixels = written.train.images.reshape({-1, 3}).to(torch::kDouble);
  ASSERT_EQ(splits.mean.size(), 3u);
  ASSERT_EQ(splits.std.size(), 3u);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(splits.mean[c], pixels.select(1, c).mean().item<double>(), 1e-9);
    EXPECT_NEAR(splits.std[c], pixels.select(1, c).std(/*unbiased=*/false).item<double>(), 1e-9);
  }
}

TEST(ImageFolder, PixelLayoutAndChannelOrder) {
  TempDir dir;
  testing::write_image_folder(dir.path(), folder_spec());
  cv::Mat bgr(5, 7, CV_8UC3);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x)
      bgr.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uint8_t>(x), static_cast<uint8_t>(10 * y), 100);
  ASSERT_TRUE(cv::imwrite((dir / "train/class_00/img_0000.png").string(), bgr));
  const auto image = load_folder(dir).train->images[0];
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x) {
      EXPECT_EQ(image[y][x][0].item<int>(), 100);
      EXPECT_EQ(image[y][x][1].item<int>(), 10 * y);
      EXPECT_EQ(image[y][x][2].item<int>(), x);
    }
}

TEST(ImageFolder, GrayImagesGiveOneChannel) {
  TempDir dir;
  auto spec = folder_spec();
  spec.channels = 1;
  spec.extension = ".bmp";
  const auto written = testing::write_image_folder(dir.path(), spec);
  const auto splits = load_folder(dir);
  ASSERT_EQ(splits.train->images.sizes(), (std::vector<int64_t>{12, 5, 7, 1}));
  EXPECT_TRUE(torch::equal(splits.train->images, written.train.images));
  EXPECT_TRUE(torch::equal(splits.test->images, written.test.images));
  EXPECT_EQ(splits.mean.size(), 1u);
  EXPECT_EQ(splits.std.size(), 1u);
}

TEST(ImageFolder, TestImagesFollowTheTrainingChannels) {
  TempDir dir;
  auto spec = folder_spec();
  spec.channels = 1;
  testing::write_image_folder(dir.path(), spec);
  // A colour test image is converted to gray when every training image is gray.
  ASSERT_TRUE(
      cv::imwrite((dir / "test/class_01/img_0002.png").string(), cv::Mat(5, 7, CV_8UC3, cv::Scalar(50, 50, 50))));
  const auto gray = load_folder(dir);
  EXPECT_EQ(gray.test->images.size(3), 1);
  EXPECT_TRUE(gray.test->images[2].eq(50).all().item<bool>());
}

TEST(ImageFolder, OneColourTrainingImageMakesEveryImageRgb) {
  TempDir dir;
  auto spec = folder_spec();
  spec.channels = 1;
  const auto written = testing::write_image_folder(dir.path(), spec);
  ASSERT_TRUE(cv::imwrite((dir / "train/class_02/img_0011.png").string(), cv::Mat(5, 7, CV_8UC3, cv::Scalar(1, 2, 3))));
  const auto splits = load_folder(dir);
  ASSERT_EQ(splits.train->images.sizes(), (std::vector<int64_t>{12, 5, 7, 3}));
  EXPECT_TRUE(torch::equal(splits.train->images[0], written.train.images[0].expand({5, 7, 3})));
  EXPECT_TRUE(torch::equal(splits.train->images[11], torch::tensor({3, 2, 1}, torch::kByte).expand({5, 7, 3})));
  EXPECT_EQ(splits.test->images.size(3), 3);
  EXPECT_TRUE(torch::equal(splits.test->images[1], written.test.images[1].expand({5, 7, 3})));
}

TEST(ImageFolder, AlphaIsDropped) {
  TempDir dir;
  testing::write_image_folder(dir.path(), folder_spec());
  ASSERT_TRUE(
      cv::imwrite((dir / "train/class_00/img_0000.png").string(), cv::Mat(5, 7, CV_8UC4, cv::Scalar(1, 2, 3, 4))));
  const auto splits = load_folder(dir);
  EXPECT_EQ(splits.train->images.size(3), 3);
  EXPECT_TRUE(torch::equal(splits.train->images[0], torch::tensor({3, 2, 1}, torch::kByte).expand({5, 7, 3})));
}

TEST(ImageFolder, ValSplitExtensionsAndStrayFiles) {
  TempDir dir;
  auto spec = folder_spec();
  spec.test_dir = "val";
  spec.extension = ".PNG";
  const auto written = testing::write_image_folder(dir.path(), spec);
  testing::write_text(dir / "train/class_00/notes.txt", "not an image");
  testing::write_text(dir / "train/class_00/.hidden.png", "not an image either");
  fs::create_directories(dir / "train/.ipynb_checkpoints");
  fs::create_directories(dir / "val/.ipynb_checkpoints");
  const auto splits = load_folder(dir);
  EXPECT_TRUE(torch::equal(splits.train->images, written.train.images));
  EXPECT_TRUE(torch::equal(splits.test->images, written.test.images));
  EXPECT_EQ(splits.class_names, written.class_dirs);
}

TEST(ImageFolder, UnknownTestClassNamesTheDirectory) {
  TempDir dir;
  testing::write_image_folder(dir.path(), folder_spec());
  fs::create_directories(dir / "test/zebra");
  EXPECT_EQ(folder_error_of(dir),
            (dir / "test/zebra").string() + ": class 'zebra' is not a class of " + (dir / "train").string());
}

TEST(ImageFolder, MixedSizesAreRejected) {
  TempDir dir;
  testing::write_image_folder(dir.path(), folder_spec());
  ASSERT_TRUE(cv::imwrite((dir / "train/class_01/img_0005.png").string(), cv::Mat(7, 5, CV_8UC3, cv::Scalar(0))));
  EXPECT_EQ(folder_error_of(dir), (dir / "train/class_01/img_0005.png").string() +
                                      ": image is 5x7 (width x height), expected 7x5 like " +
                                      (dir / "train/class_00/img_0000.png").string());
}

TEST(ImageFolder, UndecodableImageIsNamed) {
  TempDir dir;
  testing::write_image_folder(dir.path(), folder_spec());
  testing::write_text(dir / "test/class_02/img_0004.jpg", "\xff\xd8 truncated");
  EXPECT_EQ(folder_error_of(dir), (dir / "test/class_02/img_0004.jpg").string() + ": cannot decode image");
}

TEST(ImageFolder, MissingDirectories) {
  TempDir dir;
  testing::write_image_folder(dir.path(), folder_spec());
  fs::remove_all(dir / "train/class_01");
  fs::create_directories(dir / "train/class_01");
  EXPECT_EQ(folder_error_of(dir), (dir / "train/class_01").string() + ": no images (.png, .jpg, .jpeg, .bmp)");
  fs::remove_all(dir / "test");
  EXPECT_EQ(folder_error_of(dir), dir.path().string() + ": neither test/ nor val/ directory found");
  fs::remove_all(dir / "train");
  EXPECT_EQ(folder_error_of(dir), (dir / "train").string() + ": directory not found");
}

// Regression: the tensor for every image is allocated at the size of the first
// one; a large first image times many files made LibTorch's allocation error
// (c10::Error) escape instead of a DataError. Here 6000 images of 8192x8192x3 ask
// for 1125 GiB. (Where the allocation succeeds, with overcommit always on, the
// 1x1 files are rejected for their size instead: a DataError too.)
TEST(ImageFolder, ImagesBeyondMemoryAreADataError) {
  TempDir dir;
  ASSERT_TRUE(cv::imwrite((dir / "big.png").string(), cv::Mat(8192, 8192, CV_8UC1, cv::Scalar(0))));
  ASSERT_TRUE(cv::imwrite((dir / "small.png").string(), cv::Mat(1, 1, CV_8UC1, cv::Scalar(0))));
  std::string error = "no error";
  try {
    decode_images(std::vector<fs::path>(6000, dir / "small.png"), 3, dir / "big.png");
  } catch (const DataError& e) {
    error = e.what();
  }
  EXPECT_TRUE(error == (dir / "big.png").string() +
                           ": 6000 images of 8192x8192 (width x height) do not fit in memory (1125.0 GiB)" ||
              error.find("expected 8192x8192") != std::string::npos)
      << error;
}

// root/<domain>/<class>/img_i.png with pixel value 10 * domain + class + i.
void write_domain(const fs::path& root, const std::string& domain, int d, const std::vector<std::string>& classes,
                  int per_class) {
  for (size_t c = 0; c < classes.size(); ++c)
    for (int i = 0; i < per_class; ++i) {
      fs::create_directories(root / domain / classes[c]);
      const cv::Mat image(4, 4, CV_8UC1, cv::Scalar(10 * d + static_cast<int>(c) + i));
      ASSERT_TRUE(cv::imwrite((root / domain / classes[c] / ("img_" + std::to_string(i) + ".png")).string(), image));
    }
}

TEST(ImageFolderDomains, EachDomainIsARangeOfTheSameClassesWithAFifthHeldOut) {
  TempDir dir;
  write_domain(dir.path(), "a_day", 0, {"cat", "dog"}, 10);
  write_domain(dir.path(), "b_night", 1, {"cat", "dog"}, 5);
  const auto splits = DatasetRegistry::get().at("image_folder_domains")(dir.path().string());
  EXPECT_EQ(splits.domain_names, (std::vector<std::string>{"a_day", "b_night"}));
  EXPECT_EQ(splits.class_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(splits.domains.size(), 2u);
  // Domain a: 2 classes x 10 images, every fifth (img_4, img_9) for test: 16 + 4.
  EXPECT_EQ(splits.domains[0].train_begin, 0);
  EXPECT_EQ(splits.domains[0].train_end, 16);
  EXPECT_EQ(splits.domains[0].test_end, 4);
  EXPECT_EQ(splits.domains[1].train_begin, 16);
  EXPECT_EQ(splits.domains[1].train_end, 24);  // 2 x 4
  EXPECT_EQ(splits.domains[1].test_begin, 4);
  EXPECT_EQ(splits.domains[1].test_end, 6);
  EXPECT_EQ(splits.train->size(), 24);
  EXPECT_EQ(splits.test->labels[5].item<int64_t>(), 1);
  // The files' order is by name: img_0, img_1, img_2, img_3, img_5 ... of cat in
  // domain b start at 16; its held-out test image is img_4 (10 + 0 + 4).
  EXPECT_EQ(splits.train->images[16].flatten()[0].item<int>(), 10);
  EXPECT_EQ(splits.test->images[4].flatten()[0].item<int>(), 14);
}

TEST(ImageFolderDomains, ADomainWithOtherClassesIsNamed) {
  TempDir dir;
  write_domain(dir.path(), "a", 0, {"cat", "dog"}, 5);
  write_domain(dir.path(), "b", 1, {"cat", "cow"}, 5);
  try {
    DatasetRegistry::get().at("image_folder_domains")(dir.path().string());
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find((dir.path() / "b").string() + ": its class folders differ"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace sscl
