// Writes the dataset seeds of tests/fuzz/corpus (the config seeds are written by
// hand): small datasets in the exact on-disk formats, made by the writers the
// reader tests use (tests/dataset_writers.h), packed as bundles (fuzz_files.h),
// plus a few broken variants. Not part of the default build:
//   ninja fuzz_make_seed_corpus && ./tests/fuzz/fuzz_make_seed_corpus ../../tests/fuzz/corpus
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "tests/dataset_writers.h"
#include "tests/test_util.h"

namespace {

namespace fs = std::filesystem;
using sscl::testing::SyntheticImages;
using sscl::testing::TempDir;
using Files = std::map<std::string, std::string>;  // relative name -> bytes (sorted)

std::string read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Files files_under(const fs::path& root) {
  Files files;
  for (const auto& entry : fs::recursive_directory_iterator(root))
    if (entry.is_regular_file()) files[fs::relative(entry.path(), root).generic_string()] = read_bytes(entry.path());
  return files;
}

// The bundle format: "=== NAME\n" then the bytes; a newline before each later header.
std::string bundle(const Files& files) {
  std::string out;
  for (const auto& [name, bytes] : files) out += (out.empty() ? "" : "\n") + ("=== " + name + "\n") + bytes;
  return out;
}

std::string gzipped(const std::string& bytes) {
  uLongf size = compressBound(static_cast<uLong>(bytes.size())) + 32;
  std::string out(size, '\0');
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);  // +16: gzip wrapper
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string idx(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  TempDir dir;
  sscl::testing::write_idx(dir / "f", dims, data);
  return read_bytes(dir / "f");
}

class Corpus {
 public:
  explicit Corpus(fs::path root) : root_(std::move(root)) {}

  void add(const std::string& target, const std::string& seed, const std::string& bytes) {
    fs::create_directories(root_ / target);
    std::ofstream(root_ / target / seed, std::ios::binary) << bytes;
    std::printf("%-20s %-40s %7zu bytes\n", target.c_str(), seed.c_str(), bytes.size());
  }

 private:
  fs::path root_;
};

SyntheticImages tiny_spec(int rows, int cols) {
  SyntheticImages spec;
  spec.classes = 2;
  spec.train_per_class = 1;
  spec.test_per_class = 1;
  spec.rows = rows;
  spec.cols = cols;
  spec.noise = 8;
  spec.jpeg_params = {cv::IMWRITE_JPEG_QUALITY, 50};
  return spec;
}

void idx_seeds(Corpus& corpus) {
  const std::string images = idx({2, 3, 2}, {0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255});
  corpus.add("fuzz_idx", "images_2x3x2", images);
  corpus.add("fuzz_idx", "labels_3", idx({3}, {0, 9, 4}));
  corpus.add("fuzz_idx", "images_gzip", gzipped(images));
  corpus.add("fuzz_idx", "truncated_data", images.substr(0, images.size() - 3));
  corpus.add("fuzz_idx", "int32_type", std::string("\0\0\x0c\x01\0\0\0\x01\0\0\0\x07", 12));

  Files fashion;
  for (const std::string split : {"train", "t10k"}) {
    fashion[split + "-images-idx3-ubyte"] = idx({2, 2, 2}, {0, 40, 80, 120, 160, 200, 240, 255});
    fashion[split + "-labels-idx1-ubyte"] = idx({2}, {3, 9});
  }
  corpus.add("fuzz_fashion_mnist", "valid_plain", bundle(fashion));
  Files zipped;
  for (const auto& [name, bytes] : fashion) zipped[name + ".gz"] = gzipped(bytes);
  corpus.add("fuzz_fashion_mnist", "valid_gzip", bundle(zipped));
  fashion["t10k-labels-idx1-ubyte"] = idx({3}, {0, 1, 2});
  corpus.add("fuzz_fashion_mnist", "label_count_mismatch", bundle(fashion));
  fashion["t10k-labels-idx1-ubyte"] = idx({2}, {0, 1});
  fashion["t10k-images-idx3-ubyte"] = idx({2, 3, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  corpus.add("fuzz_fashion_mnist", "test_images_of_another_size", bundle(fashion));
}

void cifar_seeds(Corpus& corpus) {
  TempDir ten, hundred;
  SyntheticImages spec = tiny_spec(32, 32);
  spec.train_per_class = 3;  // 6 records over data_batch_1..5
  sscl::testing::write_cifar10_bin(ten.path(), spec);
  Files cifar10 = files_under(ten.path());
  corpus.add("fuzz_cifar", "valid_cifar10", bundle(cifar10));
  spec.train_per_class = 1;
  sscl::testing::write_cifar100_bin(hundred.path(), spec);
  Files cifar100 = files_under(hundred.path());
  corpus.add("fuzz_cifar", "valid_cifar100", bundle(cifar100));

  cifar100["test.bin"][1] = 100;  // fine label out of range
  corpus.add("fuzz_cifar", "cifar100_fine_label_100", bundle(cifar100));
  cifar10["test_batch.bin"].pop_back();
  cifar10["batches.meta.txt"] = "one\ntwo\n";
  corpus.add("fuzz_cifar", "cifar10_truncated_and_two_names", bundle(cifar10));
}

void tiny_imagenet_seeds(Corpus& corpus) {
  TempDir dir;
  sscl::testing::write_tiny_imagenet(dir.path(), tiny_spec(8, 8));
  Files files = files_under(dir.path());
  corpus.add("fuzz_tiny_imagenet", "valid", bundle(files));
  Files valid = files;
  files["val/val_annotations.txt"] += "val_0.JPEG\tn90000000\t0\t0\t1\t1\nnot-a-line\n";
  corpus.add("fuzz_tiny_imagenet", "bad_annotations", bundle(files));
  valid["wnids.txt"] += "../n90000000\n";
  valid["val/val_annotations.txt"] = "../../wnids.txt\tn90000000\t0\t0\t1\t1\n";
  corpus.add("fuzz_tiny_imagenet", "names_leaving_the_folder", bundle(valid));
}

void image_folder_seeds(Corpus& corpus) {
  for (const auto& [name, extension, channels] :
       {std::tuple{"valid_rgb_png", ".png", 3}, std::tuple{"valid_gray_bmp", ".bmp", 1},
        std::tuple{"valid_jpeg", ".jpg", 3}}) {
    TempDir dir;
    SyntheticImages spec = tiny_spec(3, 4);
    spec.extension = extension;
    spec.channels = channels;
    spec.test_dir = channels == 1 ? "val" : "test";
    sscl::testing::write_image_folder(dir.path(), spec);
    corpus.add("fuzz_image_folder", name, bundle(files_under(dir.path())));
  }
  TempDir dir;
  sscl::testing::write_image_folder(dir.path(), tiny_spec(3, 4));
  Files files = files_under(dir.path());
  files["test/class_07/img_0000.png"] = files.begin()->second;  // a class train/ does not have
  files["train/class_01/img_0009.png"] = "not an image";
  corpus.add("fuzz_image_folder", "unknown_class_and_junk", bundle(files));
}

void image_decode_seeds(Corpus& corpus) {
  TempDir dir;
  sscl::testing::WrittenSplit split;
  split.images = at::arange(4 * 3 * 4, at::kByte).mul(5).view({1, 4, 3, 4});  // 3x4 pixels with alpha
  const auto rgb = split.images.narrow(3, 0, 3), gray = split.images.narrow(3, 0, 1);
  for (const auto& [name, image, params] :
       {std::tuple{"rgba.png", split.images, std::vector<int>{}}, std::tuple{"rgb.png", rgb, std::vector<int>{}},
        std::tuple{"gray.png", gray, std::vector<int>{}}, std::tuple{"rgb.bmp", rgb, std::vector<int>{}},
        std::tuple{"rgb.jpg", rgb, std::vector<int>{cv::IMWRITE_JPEG_QUALITY, 50}},
        std::tuple{"gray.jpg", gray, std::vector<int>{}}}) {
    sscl::testing::WrittenSplit one;
    one.images = image.contiguous();
    sscl::testing::write_image(dir / name, one, 0, params);
    corpus.add("fuzz_image_decode", name, read_bytes(dir / name));
  }
  const std::string png = read_bytes(dir / "rgb.png");
  corpus.add("fuzz_image_decode", "truncated.png", png.substr(0, png.size() / 2));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_ROOT (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  Corpus corpus(argv[1]);
  idx_seeds(corpus);
  cifar_seeds(corpus);
  tiny_imagenet_seeds(corpus);
  image_folder_seeds(corpus);
  image_decode_seeds(corpus);
  return 0;
}
