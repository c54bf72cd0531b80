// Writers of small datasets in the exact on-disk formats of the CIFAR-10/100
// (binary version), TinyImageNet-200 and image-folder readers. Image i of class c
// is c's colour plus uniform noise in [0, noise): a signal that crops and flips keep
// and that a small CNN learns in a few iterations. Each writer returns what the
// reader should give back (exactly for lossless formats, before JPEG's loss).
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace sscl::testing {

struct SyntheticImages {
  int classes = 10;  // CIFAR: at most 10 / 100 (the readers' class counts)
  int train_per_class = 4;
  int test_per_class = 2;
  int rows = 32, cols = 32;  // CIFAR is always 32x32
  int channels = 3;          // image folder: 1 (gray PNG/BMP) or 3; the others: 3
  int noise = 16;            // 0 = flat colours (for near-exact JPEG checks)
  unsigned seed = 7;
  bool names_file = true;          // batches.meta.txt, fine_label_names.txt, words.txt
  std::string extension = ".png";  // image folder; TinyImageNet writes .JPEG
  std::string test_dir = "test";   // image folder: "test" or "val"
  std::vector<int> jpeg_params = {cv::IMWRITE_JPEG_QUALITY, 100};
};

struct WrittenSplit {
  at::Tensor images;  // [N, H, W, C] uint8, RGB, in the order the reader returns them
  at::Tensor labels;  // [N] int64
};

struct WrittenDataset {
  WrittenSplit train, test;
  std::vector<std::string> class_names;  // as written in the names file (empty if none)
  std::vector<std::string> class_dirs;   // TinyImageNet wnids / image-folder class directories
};

// Channel k of class c's colour is a base-b digit of c (b^3 >= classes) spread over
// [20, 220]: distinct colours for up to 216 classes, 40 or more apart per channel.
// Gray images get one level per class instead.
inline int class_level(int c, int classes, int channel, int channels) {
  if (channels == 1) return 20 + (200 * c) / std::max(1, classes - 1);
  int base = 2;
  while (base * base * base < classes) ++base;
  int digit = c;
  for (int k = 0; k < channel; ++k) digit /= base;
  return 20 + (200 / (base - 1)) * (digit % base);
}

// Images whose labels are `labels`, drawn from `rng`.
inline WrittenSplit synthetic_split(const SyntheticImages& spec, const std::vector<int64_t>& labels, int channels,
                                    std::mt19937& rng) {
  const auto n = static_cast<int64_t>(labels.size());
  WrittenSplit split;
  split.images = at::empty({n, spec.rows, spec.cols, channels}, at::kByte);
  split.labels = at::tensor(at::ArrayRef<int64_t>(labels), at::kLong);
  uint8_t* p = split.images.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i)
    for (int pixel = 0; pixel < spec.rows * spec.cols; ++pixel)
      for (int k = 0; k < channels; ++k) {
        const int noise = spec.noise > 0 ? static_cast<int>(rng() % static_cast<unsigned>(spec.noise)) : 0;
        *p++ = static_cast<uint8_t>(class_level(static_cast<int>(labels[i]), spec.classes, k, channels) + noise);
      }
  return split;
}

// `per_class` labels of each class, interleaved (0, 1, ..., C-1, 0, 1, ...).
inline std::vector<int64_t> interleaved_labels(int classes, int per_class) {
  std::vector<int64_t> labels(static_cast<size_t>(classes) * per_class);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i % classes);
  return labels;
}

// `per_class` labels of each class, class after class (the folder readers' order).
inline std::vector<int64_t> grouped_labels(int classes, int per_class) {
  std::vector<int64_t> labels;
  for (int c = 0; c < classes; ++c) labels.insert(labels.end(), per_class, c);
  return labels;
}

// Writes image i of `split` (RGB or gray) to `file`; the encoder follows the extension.
inline void write_image(const std::filesystem::path& file, const WrittenSplit& split, int64_t i,
                        const std::vector<int>& params = {}) {
  at::Tensor image = split.images[i];
  if (image.size(2) == 3) image = image.flip({2});  // OpenCV writes BGR
  image = image.contiguous();
  const cv::Mat mat(static_cast<int>(image.size(0)), static_cast<int>(image.size(1)),
                    CV_8UC(static_cast<int>(image.size(2))), image.data_ptr<uint8_t>());
  if (!cv::imwrite(file.string(), mat, params)) throw std::runtime_error("cannot write " + file.string());
}

inline void write_lines(const std::filesystem::path& file, const std::vector<std::string>& lines) {
  std::ofstream out(file);
  for (const auto& line : lines) out << line << '\n';
}

// CIFAR records: the label bytes (`label_bytes` of them, from `label_columns`) then
// the R, G and B planes.
inline void write_cifar_records(const std::filesystem::path& file, const WrittenSplit& split,
                                const std::vector<at::Tensor>& label_columns, int64_t begin, int64_t end) {
  const at::Tensor planes = split.images.narrow(0, begin, end - begin).permute({0, 3, 1, 2}).reshape({end - begin, -1});
  std::vector<at::Tensor> columns;
  for (const auto& labels : label_columns)
    columns.push_back(labels.narrow(0, begin, end - begin).to(at::kByte).unsqueeze(1));
  columns.push_back(planes);
  const at::Tensor records = at::cat(columns, 1).contiguous();
  std::ofstream(file, std::ios::binary)
      .write(reinterpret_cast<const char*>(records.data_ptr<uint8_t>()), static_cast<std::streamsize>(records.numel()));
}

// cifar-10-batches-bin: data_batch_1..5.bin (the training records in 5 near-equal
// parts), test_batch.bin, batches.meta.txt. Records interleave the classes.
inline WrittenDataset write_cifar10_bin(const std::filesystem::path& dir, SyntheticImages spec = {}) {
  spec.rows = spec.cols = 32;
  std::filesystem::create_directories(dir);
  std::mt19937 rng(spec.seed);
  WrittenDataset out;
  out.train = synthetic_split(spec, interleaved_labels(spec.classes, spec.train_per_class), 3, rng);
  out.test = synthetic_split(spec, interleaved_labels(spec.classes, spec.test_per_class), 3, rng);
  const int64_t n = out.train.labels.size(0);
  for (int64_t f = 0; f < 5; ++f)
    write_cifar_records(dir / ("data_batch_" + std::to_string(f + 1) + ".bin"), out.train, {out.train.labels},
                        f * n / 5, (f + 1) * n / 5);
  write_cifar_records(dir / "test_batch.bin", out.test, {out.test.labels}, 0, out.test.labels.size(0));
  if (spec.names_file) {
    for (int c = 0; c < 10; ++c) out.class_names.push_back("cifar10_class_" + std::to_string(c));
    auto lines = out.class_names;
    lines.push_back("");  // the real file ends with a blank line
    write_lines(dir / "batches.meta.txt", lines);
  }
  return out;
}

// cifar-100-binary: train.bin, test.bin (coarse label = fine / 5), fine_label_names.txt.
inline WrittenDataset write_cifar100_bin(const std::filesystem::path& dir, SyntheticImages spec = {}) {
  spec.rows = spec.cols = 32;
  std::filesystem::create_directories(dir);
  std::mt19937 rng(spec.seed);
  WrittenDataset out;
  out.train = synthetic_split(spec, interleaved_labels(spec.classes, spec.train_per_class), 3, rng);
  out.test = synthetic_split(spec, interleaved_labels(spec.classes, spec.test_per_class), 3, rng);
  for (const auto& [name, split] : {std::pair{"train.bin", &out.train}, std::pair{"test.bin", &out.test}}) {
    const at::Tensor coarse = split->labels.div(5, "floor");
    write_cifar_records(dir / name, *split, {coarse, split->labels}, 0, split->labels.size(0));
  }
  if (spec.names_file) {
    for (int c = 0; c < 100; ++c) out.class_names.push_back("fine_" + std::to_string(c));
    write_lines(dir / "fine_label_names.txt", out.class_names);
  }
  return out;
}

// tiny-imagenet-200: wnids.txt (deliberately not in sorted order: the class index
// is the line order), train/<wnid>/images/<wnid>_<j>.JPEG and <wnid>_boxes.txt,
// val/images/val_<k>.JPEG labeled by val/val_annotations.txt (classes interleaved),
// words.txt. JPEG quality from spec.jpeg_params.
inline WrittenDataset write_tiny_imagenet(const std::filesystem::path& dir, SyntheticImages spec = {}) {
  namespace fs = std::filesystem;
  std::mt19937 rng(spec.seed);
  WrittenDataset out;
  for (int c = 0; c < spec.classes; ++c) out.class_dirs.push_back("n" + std::to_string(90000000 - 1000 * c));
  fs::create_directories(dir / "val" / "images");
  write_lines(dir / "wnids.txt", out.class_dirs);
  // The reader sorts each class's file names (n..._10 before n..._2): draw the images in that order.
  std::vector<fs::path> train_files;
  for (int c = 0; c < spec.classes; ++c) {
    const fs::path images = dir / "train" / out.class_dirs[c] / "images";
    fs::create_directories(images);
    std::vector<fs::path> files;
    for (int j = 0; j < spec.train_per_class; ++j)
      files.push_back(images / (out.class_dirs[c] + "_" + std::to_string(j) + ".JPEG"));
    std::sort(files.begin(), files.end());
    train_files.insert(train_files.end(), files.begin(), files.end());
    write_text(dir / "train" / out.class_dirs[c] / (out.class_dirs[c] + "_boxes.txt"), "");
  }
  out.train = synthetic_split(spec, grouped_labels(spec.classes, spec.train_per_class), 3, rng);
  for (size_t i = 0; i < train_files.size(); ++i)
    write_image(train_files[i], out.train, static_cast<int64_t>(i), spec.jpeg_params);

  out.test = synthetic_split(spec, interleaved_labels(spec.classes, spec.test_per_class), 3, rng);
  std::vector<std::string> annotations;
  for (int64_t k = 0; k < out.test.labels.size(0); ++k) {
    const std::string name = "val_" + std::to_string(k) + ".JPEG";
    write_image(dir / "val" / "images" / name, out.test, k, spec.jpeg_params);
    annotations.push_back(name + "\t" + out.class_dirs[out.test.labels[k].item<int64_t>()] + "\t0\t1\t" +
                          std::to_string(spec.cols - 1) + "\t" + std::to_string(spec.rows - 2));
  }
  write_lines(dir / "val" / "val_annotations.txt", annotations);
  if (spec.names_file) {
    std::vector<std::string> words = {"n00001740\tentity"};  // the real file lists all of ImageNet's synsets
    for (int c = 0; c < spec.classes; ++c) {
      out.class_names.push_back("class " + std::to_string(c) + ", alias");
      words.push_back(out.class_dirs[c] + "\t" + out.class_names.back());
    }
    write_lines(dir / "words.txt", words);
  }
  return out;
}

// root/train/class_NN/img_NNNN<ext> and root/<test_dir>/class_NN/img_NNNN<ext>, gray
// when spec.channels == 1. Names sort in index order.
inline WrittenDataset write_image_folder(const std::filesystem::path& dir, SyntheticImages spec = {}) {
  namespace fs = std::filesystem;
  std::mt19937 rng(spec.seed);
  WrittenDataset out;
  auto padded = [](int value, int width) {
    std::string s = std::to_string(value);
    return std::string(static_cast<size_t>(std::max(0, width - static_cast<int>(s.size()))), '0') + s;
  };
  for (int c = 0; c < spec.classes; ++c) out.class_dirs.push_back("class_" + padded(c, 2));
  auto write_split = [&](const std::string& split_dir, int per_class) {
    WrittenSplit split = synthetic_split(spec, grouped_labels(spec.classes, per_class), spec.channels, rng);
    for (int64_t i = 0; i < split.labels.size(0); ++i) {
      const fs::path class_dir = dir / split_dir / out.class_dirs[split.labels[i].item<int64_t>()];
      fs::create_directories(class_dir);
      write_image(class_dir / ("img_" + padded(static_cast<int>(i), 4) + spec.extension), split, i, spec.jpeg_params);
    }
    return split;
  };
  out.train = write_split("train", spec.train_per_class);
  out.test = write_split(spec.test_dir, spec.test_per_class);
  return out;
}

}  // namespace sscl::testing
