// CIFAR-10 and CIFAR-100 binary files written byte for byte by tests/dataset_writers.h.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "datasets/image_dataset.h"
#include "tests/dataset_writers.h"
#include "tests/test_util.h"

namespace sscl {
namespace {

using ::sscl::testing::SyntheticImages;
using ::sscl::testing::TempDir;

DatasetSplits load_cifar_dir(const std::string& name, const TempDir& dir) {
  return DatasetRegistry::get().at(name)(dir.path().string());
}

std::string cifar_error_of(const std::string& name, const std::string& root) {
  try {
    DatasetRegistry::get().at(name)(root);
  } catch (const DataError& e) {
    return e.what();
  }
  return "no error";
}

// One CIFAR-10 record built by hand: label, then R, G and B planes, row-major.
TEST(Cifar10, RecordLayoutIsLabelThenRgbPlanes) {
  TempDir dir;
  testing::write_cifar10_bin(dir.path());
  std::string record(3073, '\0');
  record[0] = 7;
  for (int p = 0; p < 1024; ++p) {
    record[1 + p] = static_cast<char>(p % 251);              // R
    record[1 + 1024 + p] = static_cast<char>(100 + p / 32);  // G: the row
    record[1 + 2048 + p] = static_cast<char>(200 + p % 32);  // B: the column
  }
  testing::write_text(dir / "test_batch.bin", record);
  const auto splits = load_cifar_dir("cifar10", dir);
  ASSERT_EQ(splits.test->images.sizes(), (std::vector<int64_t>{1, 32, 32, 3}));
  EXPECT_EQ(splits.test->labels[0].item<int64_t>(), 7);
  const auto image = splits.test->images[0];
  for (int y : {0, 5, 31})
    for (int x : {0, 17, 31}) {
      EXPECT_EQ(image[y][x][0].item<int>(), (y * 32 + x) % 251);
      EXPECT_EQ(image[y][x][1].item<int>(), 100 + y);
      EXPECT_EQ(image[y][x][2].item<int>(), 200 + x);
    }
}

TEST(Cifar10, ReadsWhatWasWritten) {
  TempDir dir;
  SyntheticImages spec;
  spec.train_per_class = 3;  // 30 records in 5 files of 6
  const auto written = testing::write_cifar10_bin(dir.path(), spec);
  const auto splits = load_cifar_dir("cifar10", dir);
  EXPECT_EQ(splits.name, "cifar10");
  for (const auto& [got, want] : {std::pair{splits.train, &written.train}, std::pair{splits.test, &written.test}}) {
    EXPECT_EQ(got->images.sizes(), want->images.sizes());
    EXPECT_TRUE(got->images.is_contiguous());
    EXPECT_EQ(got->images.scalar_type(), torch::kByte);
    EXPECT_TRUE(torch::equal(got->images, want->images));
    EXPECT_EQ(got->labels.scalar_type(), torch::kLong);
    EXPECT_TRUE(torch::equal(got->labels, want->labels));
    EXPECT_EQ(got->num_classes, 10);
  }
  EXPECT_EQ(splits.train->size(), 30);
  EXPECT_EQ(splits.test->size(), 20);
  EXPECT_EQ(splits.class_names, written.class_names);
  EXPECT_EQ(splits.mean, (std::vector<double>{125.307, 122.961, 113.8575}));
  EXPECT_EQ(splits.std, (std::vector<double>{51.5865, 50.847, 51.255}));
}

TEST(Cifar10, AcceptsAnyWholeNumberOfRecordsPerFile) {
  TempDir dir;
  SyntheticImages spec;
  spec.train_per_class = 1;  // 10 records: 2 per file
  spec.test_per_class = 3;
  const auto written = testing::write_cifar10_bin(dir.path(), spec);
  std::ifstream in(dir / "data_batch_1.bin", std::ios::binary);
  const std::string first((std::istreambuf_iterator<char>(in)), {});
  testing::write_text(dir / "data_batch_1.bin", first.substr(0, 3073));  // 1 record
  const auto splits = load_cifar_dir("cifar10", dir);
  EXPECT_EQ(splits.train->size(), 9);
  const auto& images = written.train.images;  // record 1 was dropped
  EXPECT_TRUE(torch::equal(splits.train->images, torch::cat({images.slice(0, 0, 1), images.slice(0, 2)})));
  EXPECT_EQ(splits.test->size(), 30);
}

TEST(Cifar10, StandardClassNamesWithoutMetaFile) {
  TempDir dir;
  SyntheticImages spec;
  spec.names_file = false;
  testing::write_cifar10_bin(dir.path(), spec);
  const auto splits = load_cifar_dir("cifar10", dir);
  EXPECT_EQ(splits.class_names, (std::vector<std::string>{"airplane", "automobile", "bird", "cat", "deer", "dog",
                                                          "frog", "horse", "ship", "truck"}));
}

TEST(Cifar10, MissingDirectoryAndFile) {
  EXPECT_EQ(cifar_error_of("cifar10", "/nonexistent/cifar"), "data.root '/nonexistent/cifar': directory not found");
  TempDir dir;
  testing::write_cifar10_bin(dir.path());
  std::filesystem::remove(dir / "data_batch_4.bin");
  EXPECT_EQ(cifar_error_of("cifar10", dir.path().string()), (dir / "data_batch_4.bin").string() + ": file not found");
}

TEST(Cifar10, TruncatedFileIsNamedWithItsSize) {
  TempDir dir;
  testing::write_cifar10_bin(dir.path());
  std::filesystem::resize_file(dir / "test_batch.bin", 3 * 3073 - 10);
  EXPECT_EQ(
      cifar_error_of("cifar10", dir.path().string()),
      (dir / "test_batch.bin").string() + ": size 9209 bytes is not a multiple of the 3073-byte record (truncated?)");
  std::filesystem::resize_file(dir / "test_batch.bin", 0);
  EXPECT_EQ(cifar_error_of("cifar10", dir.path().string()), (dir / "test_batch.bin").string() + ": empty file");
}

TEST(Cifar10, LabelOutOfRangeNamesFileAndRecord) {
  TempDir dir;
  testing::write_cifar10_bin(dir.path());
  std::fstream file(dir / "data_batch_2.bin", std::ios::binary | std::ios::in | std::ios::out);
  file.seekp(3 * 3073);
  file.put(10);
  file.close();
  EXPECT_EQ(cifar_error_of("cifar10", dir.path().string()),
            (dir / "data_batch_2.bin").string() + ": record 3 (0-based): label 10 out of range [0, 10)");
}

TEST(Cifar10, MetaFileWithWrongCountIsRejected) {
  TempDir dir;
  testing::write_cifar10_bin(dir.path());
  testing::write_text(dir / "batches.meta.txt", "a\nb\n\n");
  EXPECT_EQ(cifar_error_of("cifar10", dir.path().string()),
            (dir / "batches.meta.txt").string() + ": 2 class names, expected 10");
}

TEST(Cifar100, ReadsFineLabelsAndNames) {
  TempDir dir;
  SyntheticImages spec;
  spec.classes = 100;
  spec.train_per_class = 2;
  spec.test_per_class = 1;
  const auto written = testing::write_cifar100_bin(dir.path(), spec);
  const auto splits = load_cifar_dir("cifar100", dir);
  EXPECT_EQ(splits.name, "cifar100");
  EXPECT_EQ(splits.train->num_classes, 100);
  EXPECT_EQ(splits.test->num_classes, 100);
  EXPECT_TRUE(torch::equal(splits.train->images, written.train.images));
  EXPECT_TRUE(torch::equal(splits.train->labels, written.train.labels));  // fine, not coarse
  EXPECT_TRUE(torch::equal(splits.test->images, written.test.images));
  EXPECT_TRUE(torch::equal(splits.test->labels, written.test.labels));
  EXPECT_EQ(splits.train->labels.max().item<int64_t>(), 99);
  EXPECT_EQ(splits.class_names, written.class_names);
  EXPECT_EQ(splits.mean, (std::vector<double>{129.304, 124.070, 112.434}));
  EXPECT_EQ(splits.std, (std::vector<double>{68.170, 65.392, 70.418}));
}

TEST(Cifar100, StandardNamesWithoutNamesFile) {
  TempDir dir;
  SyntheticImages spec;
  spec.names_file = false;
  testing::write_cifar100_bin(dir.path(), spec);
  const auto splits = load_cifar_dir("cifar100", dir);
  ASSERT_EQ(splits.class_names.size(), 100u);
  EXPECT_EQ(splits.class_names[0], "apple");
  EXPECT_EQ(splits.class_names[58], "pickup_truck");
  EXPECT_EQ(splits.class_names[99], "worm");
}

TEST(Cifar100, ErrorsNameTheFile) {
  TempDir dir;
  testing::write_cifar100_bin(dir.path());
  const std::string root = dir.path().string(), train = (dir / "train.bin").string();
  std::filesystem::resize_file(dir / "train.bin", 3073 * 2);  // a CIFAR-10-sized file
  EXPECT_EQ(cifar_error_of("cifar100", root),
            train + ": size 6146 bytes is not a multiple of the 3074-byte record (truncated?)");
  std::filesystem::resize_file(dir / "train.bin", 3074 * 2);
  std::fstream file(dir / "train.bin", std::ios::binary | std::ios::in | std::ios::out);
  file.seekp(3074 + 1);
  file.put(static_cast<char>(100));
  file.close();
  EXPECT_EQ(cifar_error_of("cifar100", root), train + ": record 1 (0-based): fine label 100 out of range [0, 100)");
  file.open(dir / "train.bin", std::ios::binary | std::ios::in | std::ios::out);
  file.seekp(0);
  file.put(static_cast<char>(20));
  file.close();
  EXPECT_EQ(cifar_error_of("cifar100", root), train + ": record 0 (0-based): coarse label 20 out of range [0, 20)");
  std::filesystem::remove(dir / "test.bin");
  std::filesystem::remove(dir / "train.bin");
  EXPECT_EQ(cifar_error_of("cifar100", root), train + ": file not found");
}

}  // namespace
}  // namespace sscl
