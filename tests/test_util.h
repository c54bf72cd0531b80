// Helpers shared by the test suites: scratch directories and small datasets
// written in the exact on-disk formats the readers expect.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace sscl::testing {

// A fresh empty directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("sscl_test_" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_text(const std::filesystem::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary) << text;
}

// An uncompressed unsigned-byte IDX file: magic 0 0 8 ndims, big-endian sizes, data.
inline void write_idx(const std::filesystem::path& file, const std::vector<uint32_t>& dims,
                      const std::vector<uint8_t>& data) {
  std::ofstream out(file, std::ios::binary);
  const uint8_t magic[4] = {0, 0, 8, static_cast<uint8_t>(dims.size())};
  out.write(reinterpret_cast<const char*>(magic), 4);
  for (uint32_t d : dims) {
    const uint8_t be[4] = {static_cast<uint8_t>(d >> 24), static_cast<uint8_t>(d >> 16), static_cast<uint8_t>(d >> 8),
                           static_cast<uint8_t>(d)};
    out.write(reinterpret_cast<const char*>(be), 4);
  }
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

// A tiny Fashion-MNIST-layout dataset: `per_class` 28x28 images per class and
// split, 10 classes. Class c is a uniform brightness 20 + 22c plus noise in
// [0, 16): a signal that random crops and flips keep, and that a small CNN
// learns in a few iterations.
inline void write_tiny_fashion_mnist(const std::filesystem::path& dir, int train_per_class, int test_per_class) {
  std::filesystem::create_directories(dir);
  std::mt19937 rng(7);
  auto write_split = [&](const std::string& prefix, int per_class) {
    const uint32_t n = 10 * per_class;
    std::vector<uint8_t> images(n * 28 * 28), labels(n);
    for (uint32_t i = 0; i < n; ++i) {
      const int c = static_cast<int>(i % 10);
      labels[i] = static_cast<uint8_t>(c);
      for (int p = 0; p < 784; ++p) images[i * 784 + p] = static_cast<uint8_t>(20 + 22 * c + rng() % 16);
    }
    write_idx(dir / (prefix + "-images-idx3-ubyte"), {n, 28, 28}, images);
    write_idx(dir / (prefix + "-labels-idx1-ubyte"), {n}, labels);
  };
  write_split("train", train_per_class);
  write_split("t10k", test_per_class);
}

}  // namespace sscl::testing
