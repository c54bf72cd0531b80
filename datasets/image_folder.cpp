// A generic image folder in torchvision's ImageFolder layout: root/train/<class>/*
// and root/test/<class>/* (root/val/ when there is no test/), PNG, JPEG or BMP.
// Classes are the sorted subdirectory names of train/; nothing is resized.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "datasets/file_checks.h"
#include "datasets/image_dataset.h"
#include "datasets/image_decode.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kFolderExtensions = {".png", ".jpg", ".jpeg", ".bmp"};

// Sorted names of the subdirectories of `dir`, hidden ones (.ipynb_checkpoints, ...) skipped.
std::vector<std::string> subdirectories(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code dir_ec;
    if (!name.empty() && name[0] != '.' && it->is_directory(dir_ec)) names.push_back(name);
  }
  if (ec) throw DataError(dir.string() + ": cannot list: " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

struct FileList {
  std::vector<fs::path> files;
  std::vector<int64_t> labels;

  void add(const fs::path& dir, int64_t label) {
    const auto found = list_images(dir, kFolderExtensions);
    files.insert(files.end(), found.begin(), found.end());
    labels.insert(labels.end(), found.size(), label);
  }
};

std::shared_ptr<const ImageDataset> folder_dataset(at::Tensor images, const FileList& list, int64_t classes,
                                                   const fs::path& source) {
  auto dataset = std::make_shared<ImageDataset>();
  dataset->images = std::move(images);
  dataset->labels = at::tensor(at::ArrayRef<int64_t>(list.labels), at::kLong);
  dataset->num_classes = classes;
  validate(*dataset, source.string());
  return dataset;
}

// Per-channel mean and population standard deviation on the 0..255 scale, summed
// in chunks so that the dataset is never copied whole as doubles.
void channel_statistics(const at::Tensor& images, std::vector<double>& mean, std::vector<double>& std) {
  const int64_t channels = images.size(3);
  const at::Tensor pixels = images.view({-1, channels});
  const int64_t n = pixels.size(0), chunk = int64_t{1} << 20;
  at::Tensor sum = at::zeros({channels}, at::kDouble), squares = at::zeros({channels}, at::kDouble);
  for (int64_t start = 0; start < n; start += chunk) {
    const at::Tensor x = pixels.narrow(0, start, std::min(chunk, n - start)).to(at::kDouble);
    sum += x.sum(0);
    squares += x.square().sum(0);
  }
  mean.clear();
  std.clear();
  for (int64_t c = 0; c < channels; ++c) {
    const double m = sum[c].item<double>() / static_cast<double>(n);
    const double variance = squares[c].item<double>() / static_cast<double>(n) - m * m;
    mean.push_back(m);
    // A constant channel would divide by zero when normalising; leave it unscaled.
    const double s = std::sqrt(std::max(variance, 0.0));
    std.push_back(s > 1e-6 ? s : 1.0);
  }
}

DatasetSplits load_image_folder(const std::string& root_name) {
  const fs::path root = root_name;
  if (!is_directory_path(root)) throw DataError("data.root '" + root_name + "': directory not found");
  const fs::path train_dir = root / "train";
  if (!is_directory_path(train_dir)) throw DataError(train_dir.string() + ": directory not found");
  const fs::path test_dir = is_directory_path(root / "test") ? root / "test" : root / "val";
  if (!is_directory_path(test_dir)) throw DataError(root_name + ": neither test/ nor val/ directory found");

  const std::vector<std::string> classes = subdirectories(train_dir);
  if (classes.empty()) throw DataError(train_dir.string() + ": no class subdirectories");
  const auto num_classes = static_cast<int64_t>(classes.size());
  FileList train, test;
  for (int64_t c = 0; c < num_classes; ++c) {
    const size_t before = train.files.size();
    train.add(train_dir / classes[c], c);
    if (train.files.size() == before)
      throw DataError((train_dir / classes[c]).string() + ": no images (.png, .jpg, .jpeg, .bmp)");
  }
  for (const auto& name : subdirectories(test_dir)) {
    const auto it = std::lower_bound(classes.begin(), classes.end(), name);
    if (it == classes.end() || *it != name)
      throw DataError((test_dir / name).string() + ": class '" + name + "' is not a class of " + train_dir.string());
    test.add(test_dir / name, it - classes.begin());
  }

  // Gray only when every training image is; the test images follow the training
  // images' channels and size.
  at::Tensor train_images = decode_images(train.files, 0);
  at::Tensor test_images = decode_images(test.files, static_cast<int>(train_images.size(3)), train.files.front());

  DatasetSplits splits;
  splits.name = "image_folder";
  splits.train = folder_dataset(train_images, train, num_classes, train_dir);
  splits.test = folder_dataset(test_images, test, num_classes, test_dir);
  splits.class_names = classes;
  channel_statistics(train_images, splits.mean, splits.std);
  return splits;
}

// One domain of image_folder_domains: root/<domain>/train|test/<class>/* when it has
// train/, else root/<domain>/<class>/* with every fifth image of a class (by name)
// held out for testing.
void add_domain(const fs::path& dir, const std::vector<std::string>& classes, FileList& train, FileList& test) {
  const bool split = is_directory_path(dir / "train");
  const fs::path class_root = split ? dir / "train" : dir;
  if (subdirectories(class_root) != classes)
    throw DataError(class_root.string() + ": its class folders differ from the first domain's (" +
                    std::to_string(classes.size()) + " classes); every domain needs the same classes");
  for (int64_t c = 0; c < static_cast<int64_t>(classes.size()); ++c) {
    const fs::path class_dir = class_root / classes[c];
    const auto files = list_images(class_dir, kFolderExtensions);
    if (files.size() < (split ? 1u : 2u))
      throw DataError(class_dir.string() +
                      (split ? ": no images" : ": fewer than 2 images (one is held out for test)") +
                      " (.png, .jpg, .jpeg, .bmp)");
    if (split) {
      train.add(class_dir, c);
      continue;
    }
    for (size_t i = 0; i < files.size(); ++i) {
      FileList& to = i % 5 == 4 ? test : train;
      to.files.push_back(files[i]);
      to.labels.push_back(c);
    }
  }
  if (split) {
    const fs::path test_dir = is_directory_path(dir / "test") ? dir / "test" : dir / "val";
    if (!is_directory_path(test_dir)) throw DataError(dir.string() + ": has train/ but neither test/ nor val/");
    if (subdirectories(test_dir) != classes)
      throw DataError(test_dir.string() + ": its class folders differ from the first domain's");
    for (int64_t c = 0; c < static_cast<int64_t>(classes.size()); ++c) test.add(test_dir / classes[c], c);
  }
}

DatasetSplits load_image_folder_domains(const std::string& root_name) {
  const fs::path root = root_name;
  if (!is_directory_path(root)) throw DataError("data.root '" + root_name + "': directory not found");
  const std::vector<std::string> domains = subdirectories(root);
  if (domains.size() < 2)
    throw DataError(root_name + ": needs at least 2 domain folders, found " + std::to_string(domains.size()));
  const fs::path first =
      is_directory_path(root / domains[0] / "train") ? root / domains[0] / "train" : root / domains[0];
  const std::vector<std::string> classes = subdirectories(first);
  if (classes.empty()) throw DataError(first.string() + ": no class subdirectories");
  FileList train, test;
  DatasetSplits splits;
  for (const auto& domain : domains) {
    DomainRange range;
    range.train_begin = static_cast<int64_t>(train.files.size());
    range.test_begin = static_cast<int64_t>(test.files.size());
    add_domain(root / domain, classes, train, test);
    range.train_end = static_cast<int64_t>(train.files.size());
    range.test_end = static_cast<int64_t>(test.files.size());
    splits.domains.push_back(range);
    splits.domain_names.push_back(domain);
  }
  at::Tensor train_images = decode_images(train.files, 0);
  at::Tensor test_images = decode_images(test.files, static_cast<int>(train_images.size(3)), train.files.front());
  splits.name = "image_folder_domains";
  splits.train = folder_dataset(train_images, train, static_cast<int64_t>(classes.size()), root);
  splits.test = folder_dataset(test_images, test, static_cast<int64_t>(classes.size()), root);
  splits.class_names = classes;
  channel_statistics(train_images, splits.mean, splits.std);
  return splits;
}

SSCL_REGISTER(DatasetRegistry, "image_folder_domains",
              "domains of one class set, a task each (domain-IL): root/<domain>/<class>/* (every fifth image of a "
              "class held out for test) or root/<domain>/train|test/<class>/*",
              load_image_folder_domains);

SSCL_REGISTER(DatasetRegistry, "image_folder",
              "image folder in torchvision's ImageFolder layout: root/train/<class>/*, root/test/ (or val/) likewise",
              load_image_folder);

}  // namespace
}  // namespace sscl
