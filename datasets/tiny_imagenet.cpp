// TinyImageNet-200 (the CS231n subset of ImageNet): 200 classes of 500 training and
// 50 validation 64x64 JPEGs. The validation images, whose labels are published in
// val/val_annotations.txt, are the test split (the test images are unlabeled).
#include <ATen/ATen.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "datasets/file_checks.h"
#include "datasets/image_dataset.h"
#include "datasets/image_decode.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kTinyImageNetExtensions = {".jpeg", ".jpg", ".png"};

std::string trimmed(const std::string& s) {
  size_t begin = 0, end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return s.substr(begin, end - begin);
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
    fields.push_back(line.substr(start, tab - start));
  fields.push_back(line.substr(start));
  return fields;
}

std::ifstream open_text(const fs::path& file) {
  if (!is_regular_file_path(file)) throw DataError(file.string() + ": file not found");
  std::ifstream in(file);
  if (!in) throw DataError(file.string() + ": cannot open");
  return in;
}

std::string at_line(const fs::path& file, int line) { return file.string() + ":" + std::to_string(line) + ": "; }

// wnids and image names become path components under the root; a '/', '.' or
// '..' would make the reader look outside the dataset's folders.
bool plain_name(const std::string& name) { return name.find('/') == std::string::npos && name != "." && name != ".."; }

// Class index = line order (the order of the official file, not sorted).
std::vector<std::string> read_wnids(const fs::path& file) {
  std::ifstream in = open_text(file);
  std::vector<std::string> wnids;
  std::set<std::string> seen;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    const std::string wnid = trimmed(line);
    if (wnid.empty()) continue;
    if (wnid.find_first_of(" \t") != std::string::npos)
      throw DataError(at_line(file, number) + "expected one wnid, got '" + wnid + "'");
    if (!plain_name(wnid)) throw DataError(at_line(file, number) + "wnid '" + wnid + "' is not a plain name");
    if (!seen.insert(wnid).second) throw DataError(at_line(file, number) + "wnid '" + wnid + "' listed twice");
    wnids.push_back(wnid);
  }
  if (wnids.empty()) throw DataError(file.string() + ": no wnids");
  return wnids;
}

// words.txt covers all of ImageNet's synsets; only ours are kept.
std::vector<std::string> read_class_names(const fs::path& file, const std::vector<std::string>& wnids) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < wnids.size(); ++i) index.emplace(wnids[i], i);
  std::vector<std::string> names = wnids;
  std::ifstream in = open_text(file);
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (trimmed(line).empty()) continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) throw DataError(at_line(file, number) + "expected 'wnid<TAB>names'");
    auto it = index.find(trimmed(line.substr(0, tab)));
    if (it != index.end()) names[it->second] = trimmed(line.substr(tab + 1));
  }
  return names;
}

std::shared_ptr<ImageDataset> tiny_imagenet_dataset(at::Tensor images, const std::vector<int64_t>& labels,
                                                    int64_t classes) {
  auto dataset = std::make_shared<ImageDataset>();
  dataset->images = std::move(images);
  dataset->labels = at::tensor(at::ArrayRef<int64_t>(labels), at::kLong);
  dataset->num_classes = classes;
  return dataset;
}

DatasetSplits load_tiny_imagenet(const std::string& root_name) {
  const fs::path root = root_name;
  if (!is_directory_path(root)) throw DataError("data.root '" + root_name + "': directory not found");
  const fs::path wnids_file = root / "wnids.txt";
  const std::vector<std::string> wnids = read_wnids(wnids_file);
  const auto classes = static_cast<int64_t>(wnids.size());

  std::vector<fs::path> train_files;
  std::vector<int64_t> train_labels;
  for (int64_t c = 0; c < classes; ++c) {
    const fs::path dir = root / "train" / wnids[c] / "images";
    const auto files = list_images(dir, kTinyImageNetExtensions);
    if (files.empty()) throw DataError(dir.string() + ": no images");
    train_files.insert(train_files.end(), files.begin(), files.end());
    train_labels.insert(train_labels.end(), files.size(), c);
  }

  const fs::path annotations = root / "val" / "val_annotations.txt";
  std::unordered_map<std::string, int64_t> label_of;
  for (int64_t c = 0; c < classes; ++c) label_of.emplace(wnids[c], c);
  std::vector<fs::path> test_files;
  std::vector<int64_t> test_labels;
  std::set<std::string> annotated;
  std::ifstream in = open_text(annotations);
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (trimmed(line).empty()) continue;
    const auto fields = split_tabs(line);
    const std::string image = fields.size() >= 2 ? trimmed(fields[0]) : "";
    const std::string wnid = fields.size() >= 2 ? trimmed(fields[1]) : "";
    if (image.empty() || wnid.empty())
      throw DataError(at_line(annotations, number) + "expected 'image<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1'");
    if (!plain_name(image))
      throw DataError(at_line(annotations, number) + "image '" + image + "' is not a file name in " +
                      (root / "val" / "images").string());
    auto it = label_of.find(wnid);
    if (it == label_of.end())
      throw DataError(at_line(annotations, number) + "wnid '" + wnid + "' is not in " + wnids_file.string());
    if (!annotated.insert(image).second)
      throw DataError(at_line(annotations, number) + "'" + image + "' annotated twice");
    test_files.push_back(root / "val" / "images" / image);
    test_labels.push_back(it->second);
  }
  if (test_files.empty()) throw DataError(annotations.string() + ": no annotations");

  DatasetSplits splits;
  splits.name = "tiny_imagenet";
  const fs::path words = root / "words.txt";
  splits.class_names = path_exists(words) ? read_class_names(words, wnids) : wnids;
  // One size for every image, train and test: that of the first training image.
  auto train = tiny_imagenet_dataset(decode_images(train_files, 3), train_labels, classes);
  auto test = tiny_imagenet_dataset(decode_images(test_files, 3, train_files.front()), test_labels, classes);
  validate(*train, (root / "train").string());
  validate(*test, annotations.string());
  splits.train = std::move(train);
  splits.test = std::move(test);
  // ImageNet's statistics, as the reference uses.
  splits.mean = {123.675, 116.28, 103.53};
  splits.std = {58.395, 57.12, 57.375};
  return splits;
}

SSCL_REGISTER(DatasetRegistry, "tiny_imagenet",
              "TinyImageNet-200: 500 training 64x64 JPEGs per class, the 50 labeled validation ones as the test split",
              load_tiny_imagenet);

}  // namespace
}  // namespace sscl
