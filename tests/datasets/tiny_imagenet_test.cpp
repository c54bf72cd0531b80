// TinyImageNet-200's layout written by tests/dataset_writers.h, small (16x16 JPEGs).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "datasets/image_dataset.h"
#include "tests/dataset_writers.h"
#include "tests/test_util.h"

namespace sscl {
namespace {

using ::sscl::testing::SyntheticImages;
using ::sscl::testing::TempDir;
namespace fs = std::filesystem;

SyntheticImages tiny_spec() {
  SyntheticImages spec;
  spec.classes = 3;
  spec.train_per_class = 12;  // names _10 and _11 sort before _2
  spec.test_per_class = 2;
  spec.rows = spec.cols = 16;
  spec.noise = 0;  // flat colours survive JPEG within a level or two
  return spec;
}

std::string tiny_error_of(const TempDir& dir) {
  try {
    DatasetRegistry::get().at("tiny_imagenet")(dir.path().string());
  } catch (const DataError& e) {
    return e.what();
  }
  return "no error";
}

int64_t max_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kInt) - b.to(torch::kInt)).abs().max().item<int64_t>();
}

TEST(TinyImageNet, ReadsWhatWasWritten) {
  TempDir dir;
  const auto written = testing::write_tiny_imagenet(dir.path(), tiny_spec());
  ASSERT_FALSE(std::is_sorted(written.class_dirs.begin(), written.class_dirs.end()));  // line order matters
  const auto splits = DatasetRegistry::get().at("tiny_imagenet")(dir.path().string());
  EXPECT_EQ(splits.name, "tiny_imagenet");
  ASSERT_EQ(splits.train->images.sizes(), (std::vector<int64_t>{36, 16, 16, 3}));
  ASSERT_EQ(splits.test->images.sizes(), (std::vector<int64_t>{6, 16, 16, 3}));
  EXPECT_TRUE(splits.train->images.is_contiguous());
  EXPECT_TRUE(torch::equal(splits.train->labels, written.train.labels));
  EXPECT_TRUE(torch::equal(splits.test->labels, written.test.labels));
  EXPECT_LE(max_difference(splits.train->images, written.train.images), 3);
  EXPECT_LE(max_difference(splits.test->images, written.test.images), 3);
  EXPECT_EQ(splits.train->num_classes, 3);
  EXPECT_EQ(splits.test->num_classes, 3);
  EXPECT_EQ(splits.class_names, written.class_names);
  EXPECT_EQ(splits.mean, (std::vector<double>{123.675, 116.28, 103.53}));
  EXPECT_EQ(splits.std, (std::vector<double>{58.395, 57.12, 57.375}));
}

TEST(TinyImageNet, ChannelsAreRgbAndGrayJpegsBecomeThreeChannels) {
  TempDir dir;
  testing::write_tiny_imagenet(dir.path(), tiny_spec());
  const cv::Mat bgr(16, 16, CV_8UC3, cv::Scalar(10, 60, 200));
  ASSERT_TRUE(cv::imwrite((dir / "val/images/val_0.JPEG").string(), bgr, {cv::IMWRITE_JPEG_QUALITY, 100}));
  const cv::Mat gray(16, 16, CV_8UC1, cv::Scalar(90));
  ASSERT_TRUE(cv::imwrite((dir / "val/images/val_1.JPEG").string(), gray, {cv::IMWRITE_JPEG_QUALITY, 100}));
  const auto splits = DatasetRegistry::get().at("tiny_imagenet")(dir.path().string());
  const auto test = splits.test->images;
  EXPECT_LE(max_difference(test[0], torch::tensor({200, 60, 10}).expand({16, 16, 3})), 3);
  EXPECT_LE(max_difference(test[1], torch::full({16, 16, 3}, 90)), 1);
}

TEST(TinyImageNet, ClassNamesAreTheWnidsWithoutWordsFile) {
  TempDir dir;
  auto spec = tiny_spec();
  spec.names_file = false;
  const auto written = testing::write_tiny_imagenet(dir.path(), spec);
  const auto splits = DatasetRegistry::get().at("tiny_imagenet")(dir.path().string());
  EXPECT_EQ(splits.class_names, written.class_dirs);
}

TEST(TinyImageNet, MissingDirectoryAndWnids) {
  TempDir dir;
  testing::write_tiny_imagenet(dir.path(), tiny_spec());
  fs::remove(dir / "wnids.txt");
  EXPECT_EQ(tiny_error_of(dir), (dir / "wnids.txt").string() + ": file not found");
  try {
    DatasetRegistry::get().at("tiny_imagenet")("/nonexistent/tiny");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "data.root '/nonexistent/tiny': directory not found");
  }
}

TEST(TinyImageNet, MissingTrainClassDirectory) {
  TempDir dir;
  const auto written = testing::write_tiny_imagenet(dir.path(), tiny_spec());
  fs::remove_all(dir / "train" / written.class_dirs[1]);
  EXPECT_EQ(tiny_error_of(dir), (dir / "train" / written.class_dirs[1] / "images").string() + ": directory not found");
}

// A wnid longer than the file system allows in a name (found by fuzz_tiny_imagenet)
// is a DataError naming the path, not a std::filesystem_error escaping the reader.
TEST(TinyImageNet, OverlongWnidIsADataError) {
  TempDir dir;
  const auto written = testing::write_tiny_imagenet(dir.path(), tiny_spec());
  const std::string overlong(300, 'n');
  testing::write_text(dir / "wnids.txt", written.class_dirs[0] + "\n" + overlong + "\n");
  EXPECT_EQ(tiny_error_of(dir), (dir / "train" / overlong / "images").string() + ": cannot read: File name too long");
}

TEST(TinyImageNet, AnnotationErrorsNameFileAndLine) {
  TempDir dir;
  const auto written = testing::write_tiny_imagenet(dir.path(), tiny_spec());
  const fs::path annotations = dir / "val/val_annotations.txt";
  const std::string good = "val_0.JPEG\t" + written.class_dirs[0] + "\t0\t0\t15\t15\n";
  testing::write_text(annotations, good + "val_1.JPEG\tn99999999\t0\t0\t15\t15\n");
  EXPECT_EQ(tiny_error_of(dir),
            annotations.string() + ":2: wnid 'n99999999' is not in " + (dir / "wnids.txt").string());
  testing::write_text(annotations, good + "\nval_1.JPEG " + written.class_dirs[0] + "\n");
  EXPECT_EQ(tiny_error_of(dir), annotations.string() + ":3: expected 'image<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1'");
  testing::write_text(annotations, good + good);
  EXPECT_EQ(tiny_error_of(dir), annotations.string() + ":2: 'val_0.JPEG' annotated twice");
  testing::write_text(annotations, good + "val_77.JPEG\t" + written.class_dirs[2] + "\t0\t0\t15\t15\n");
  EXPECT_EQ(tiny_error_of(dir), (dir / "val/images/val_77.JPEG").string() + ": file not found");
}

// Names from the text files become paths: none may lead outside the dataset's folders.
TEST(TinyImageNet, WnidsAndImageNamesMustBePlainNames) {
  TempDir dir;
  const auto written = testing::write_tiny_imagenet(dir.path(), tiny_spec());
  testing::write_text(dir / "wnids.txt", written.class_dirs[0] + "\n../" + written.class_dirs[1] + "\n");
  EXPECT_EQ(tiny_error_of(dir),
            (dir / "wnids.txt").string() + ":2: wnid '../" + written.class_dirs[1] + "' is not a plain name");
  testing::write_text(dir / "wnids.txt", written.class_dirs[0] + "\n..\n");
  EXPECT_EQ(tiny_error_of(dir), (dir / "wnids.txt").string() + ":2: wnid '..' is not a plain name");

  testing::write_lines(dir / "wnids.txt", written.class_dirs);
  const fs::path annotations = dir / "val/val_annotations.txt";
  testing::write_text(annotations, "../../wnids.txt\t" + written.class_dirs[0] + "\t0\t0\t15\t15\n");
  EXPECT_EQ(tiny_error_of(dir), annotations.string() + ":1: image '../../wnids.txt' is not a file name in " +
                                    (dir / "val/images").string());
}

TEST(TinyImageNet, UndecodableImageIsNamed) {
  TempDir dir;
  const auto written = testing::write_tiny_imagenet(dir.path(), tiny_spec());
  const std::string wnid = written.class_dirs[2];
  const fs::path bad = dir / "train" / wnid / "images" / (wnid + "_3.JPEG");
  testing::write_text(bad, "not a JPEG");
  testing::write_text(dir / "val/images/val_4.JPEG", "not a JPEG either");  // later in the order
  EXPECT_EQ(tiny_error_of(dir), bad.string() + ": cannot decode image");
}

TEST(TinyImageNet, ImagesOfAnotherSizeAreRejected) {
  TempDir dir;
  const auto written = testing::write_tiny_imagenet(dir.path(), tiny_spec());
  ASSERT_TRUE(cv::imwrite((dir / "val/images/val_5.JPEG").string(), cv::Mat(16, 20, CV_8UC3, cv::Scalar(1, 2, 3))));
  const std::string wnid = written.class_dirs[0];
  EXPECT_EQ(tiny_error_of(dir), (dir / "val/images/val_5.JPEG").string() +
                                    ": image is 20x16 (width x height), expected 16x16 like " +
                                    (dir / "train" / wnid / "images" / (wnid + "_0.JPEG")).string());
}

}  // namespace
}  // namespace sscl
