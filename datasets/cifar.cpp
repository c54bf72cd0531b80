// CIFAR-10 and CIFAR-100 (Krizhevsky 2009), the "binary version": files of
// fixed-size records, each the label byte(s) then a 32x32 RGB image stored as three
// 1024-byte row-major planes (R, G, B).
#include <ATen/ATen.h>

#include <cctype>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "datasets/file_checks.h"
#include "datasets/image_dataset.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kCifarSide = 32;
constexpr int64_t kCifarImageBytes = 3 * kCifarSide * kCifarSide;

struct CifarFormat {
  std::string name;
  // CIFAR-10: {10} (the label); CIFAR-100: {20, 100} (coarse, fine). The last is used.
  std::vector<int> label_ranges;
  std::vector<std::string> label_kinds;  // for messages
  std::vector<std::string> train_files;
  std::string test_file;
  std::string names_file;
  std::vector<std::string> default_names;
  std::vector<double> mean, std;
};

std::string record_error(const fs::path& file, int64_t record, const std::string& kind, int label, int range) {
  return file.string() + ": record " + std::to_string(record) + " (0-based): " + kind + " " + std::to_string(label) +
         " out of range [0, " + std::to_string(range) + ")";
}

// Reads every record of `files` into one buffer, checks the labels, and splits it
// into labels and HWC images with a single permuting copy.
std::shared_ptr<const ImageDataset> read_cifar_split(const fs::path& root, const std::vector<std::string>& files,
                                                     const CifarFormat& format) {
  const int64_t label_bytes = static_cast<int64_t>(format.label_ranges.size());
  const int64_t record = label_bytes + kCifarImageBytes;
  std::vector<int64_t> counts;
  for (const auto& name : files) {
    const fs::path file = root / name;
    if (!is_regular_file_path(file)) throw DataError(file.string() + ": file not found");
    const auto bytes = static_cast<int64_t>(fs::file_size(file));
    if (bytes == 0) throw DataError(file.string() + ": empty file");
    if (bytes % record != 0)
      throw DataError(file.string() + ": size " + std::to_string(bytes) + " bytes is not a multiple of the " +
                      std::to_string(record) + "-byte record (truncated?)");
    counts.push_back(bytes / record);
  }
  int64_t total = 0;
  for (int64_t count : counts) total += count;

  at::Tensor raw = at::empty({total, record}, at::kByte);
  uint8_t* data = raw.data_ptr<uint8_t>();
  for (size_t f = 0; f < files.size(); ++f) {
    const fs::path file = root / files[f];
    const auto bytes = static_cast<std::streamsize>(counts[f] * record);
    std::ifstream in(file, std::ios::binary);
    if (!in.read(reinterpret_cast<char*>(data), bytes) || in.gcount() != bytes)
      throw DataError(file.string() + ": read error");
    for (int64_t r = 0; r < counts[f]; ++r)
      for (int64_t b = 0; b < label_bytes; ++b) {
        const int label = data[r * record + b];
        if (label >= format.label_ranges[b])
          throw DataError(record_error(file, r, format.label_kinds[b], label, format.label_ranges[b]));
      }
    data += bytes;
  }

  auto dataset = std::make_shared<ImageDataset>();
  dataset->labels = raw.select(1, label_bytes - 1).to(at::kLong);
  dataset->images = raw.narrow(1, label_bytes, kCifarImageBytes)
                        .view({total, 3, kCifarSide, kCifarSide})
                        .permute({0, 2, 3, 1})
                        .contiguous();
  dataset->num_classes = format.label_ranges.back();
  validate(*dataset, (root / files.front()).string());
  return dataset;
}

// One name per line; blank lines (the real files end with some) are skipped.
std::vector<std::string> read_names(const fs::path& file, size_t expected) {
  std::ifstream in(file);
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.size() != expected)
    throw DataError(file.string() + ": " + std::to_string(names.size()) + " class names, expected " +
                    std::to_string(expected));
  return names;
}

DatasetSplits load_cifar(const std::string& root, const CifarFormat& format) {
  if (!is_directory_path(root)) throw DataError("data.root '" + root + "': directory not found");
  DatasetSplits splits;
  splits.name = format.name;
  splits.train = read_cifar_split(root, format.train_files, format);
  splits.test = read_cifar_split(root, {format.test_file}, format);
  const fs::path names_file = fs::path(root) / format.names_file;
  const size_t classes = static_cast<size_t>(format.label_ranges.back());
  splits.class_names = path_exists(names_file) ? read_names(names_file, classes) : format.default_names;
  splits.mean = format.mean;
  splits.std = format.std;
  return splits;
}

DatasetSplits load_cifar10(const std::string& root) {
  static const CifarFormat format{
      "cifar10",
      {10},
      {"label"},
      {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
      "test_batch.bin",
      "batches.meta.txt",
      {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"},
      {125.307, 122.961, 113.8575},
      {51.5865, 50.847, 51.255}};
  return load_cifar(root, format);
}

DatasetSplits load_cifar100(const std::string& root) {
  static const CifarFormat format{
      "cifar100",
      {20, 100},
      {"coarse label", "fine label"},
      {"train.bin"},
      "test.bin",
      "fine_label_names.txt",
      {"apple",      "aquarium_fish", "baby",         "bear",       "beaver",      "bed",         "bee",
       "beetle",     "bicycle",       "bottle",       "bowl",       "boy",         "bridge",      "bus",
       "butterfly",  "camel",         "can",          "castle",     "caterpillar", "cattle",      "chair",
       "chimpanzee", "clock",         "cloud",        "cockroach",  "couch",       "crab",        "crocodile",
       "cup",        "dinosaur",      "dolphin",      "elephant",   "flatfish",    "forest",      "fox",
       "girl",       "hamster",       "house",        "kangaroo",   "keyboard",    "lamp",        "lawn_mower",
       "leopard",    "lion",          "lizard",       "lobster",    "man",         "maple_tree",  "motorcycle",
       "mountain",   "mouse",         "mushroom",     "oak_tree",   "orange",      "orchid",      "otter",
       "palm_tree",  "pear",          "pickup_truck", "pine_tree",  "plain",       "plate",       "poppy",
       "porcupine",  "possum",        "rabbit",       "raccoon",    "ray",         "road",        "rocket",
       "rose",       "sea",           "seal",         "shark",      "shrew",       "skunk",       "skyscraper",
       "snail",      "snake",         "spider",       "squirrel",   "streetcar",   "sunflower",   "sweet_pepper",
       "table",      "tank",          "telephone",    "television", "tiger",       "tractor",     "train",
       "trout",      "tulip",         "turtle",       "wardrobe",   "whale",       "willow_tree", "wolf",
       "woman",      "worm"},
      {129.304, 124.070, 112.434},
      {68.170, 65.392, 70.418}};
  return load_cifar(root, format);
}

SSCL_REGISTER(DatasetRegistry, "cifar10", "CIFAR-10: 50000 + 10000 32x32 RGB images of 10 classes (the binary version)",
              load_cifar10);
SSCL_REGISTER(DatasetRegistry, "cifar100",
              "CIFAR-100: 50000 + 10000 32x32 RGB images of 100 fine classes (the binary version)", load_cifar100);

}  // namespace
}  // namespace sscl
