// Fashion-MNIST (Xiao et al. 2017): 60000 training and 10000 test images, 28x28
// gray, 10 classes. Debian's dataset-fashion-mnist installs it under
// /usr/share/datasets/fashion-mnist; files may be gzipped or plain.
#include <ATen/ATen.h>

#include "core/error.h"
#include "datasets/file_checks.h"
#include "datasets/idx_reader.h"
#include "datasets/image_dataset.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;

fs::path find_file(const fs::path& root, const std::string& stem) {
  for (const char* suffix : {".gz", ""}) {
    fs::path candidate = root / (stem + suffix);
    if (is_regular_file_path(candidate)) return candidate;
  }
  throw DataError((root / (stem + ".gz")).string() + ": file not found (nor " + (root / stem).string() + ")");
}

std::string fashion_size_text(const at::Tensor& images) {
  return std::to_string(images.size(1)) + "x" + std::to_string(images.size(2)) + " (rows x columns)";
}

// `train` (for the test split): the split whose image size this one must have, as
// the model is built for it; a test split of another size would only fail at the
// first evaluation, inside LibTorch.
std::shared_ptr<const ImageDataset> read_fashion_split(const fs::path& root, const std::string& prefix,
                                                       const ImageDataset* train = nullptr) {
  const fs::path images_file = find_file(root, prefix + "-images-idx3-ubyte");
  const fs::path labels_file = find_file(root, prefix + "-labels-idx1-ubyte");
  auto dataset = std::make_shared<ImageDataset>();
  dataset->images = read_idx_ubyte(images_file, 3).unsqueeze(3).contiguous();  // [N, H, W, 1]
  if (train && dataset->images.sizes().slice(1) != train->images.sizes().slice(1))
    throw DataError(images_file.string() + ": images are " + fashion_size_text(dataset->images) +
                    ", but the training images are " + fashion_size_text(train->images));
  dataset->labels = read_idx_ubyte(labels_file, 1).to(at::kLong);
  dataset->num_classes = 10;
  validate(*dataset, images_file.string() + " + " + labels_file.string());
  return dataset;
}

DatasetSplits load_fashion_mnist(const std::string& root) {
  if (!is_directory_path(root)) throw DataError("data.root '" + root + "': directory not found");
  DatasetSplits splits;
  splits.name = "fashion_mnist";
  splits.train = read_fashion_split(root, "train");
  splits.test = read_fashion_split(root, "t10k", splits.train.get());
  splits.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  // Statistics of the training images.
  splits.mean = {72.940};
  splits.std = {90.021};
  return splits;
}

SSCL_REGISTER(DatasetRegistry, "fashion_mnist",
              "Fashion-MNIST: 60000 + 10000 28x28 gray images of 10 classes (IDX files, gzipped or plain)",
              load_fashion_mnist);

}  // namespace
}  // namespace sscl
