#include "datasets/idx_reader.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include "core/error.h"
#include "tests/test_util.h"

namespace sscl {
namespace {

using ::sscl::testing::TempDir;
using ::sscl::testing::write_idx;

std::string idx_error_of(const std::filesystem::path& file, int dims) {
  try {
    read_idx_ubyte(file, dims);
  } catch (const DataError& e) {
    return e.what();
  }
  return "no error";
}

TEST(IdxReader, ReadsShapeAndBytes) {
  TempDir dir;
  write_idx(dir / "x", {2, 2, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255});
  auto t = read_idx_ubyte(dir / "x", 3);
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{2, 2, 3}));
  EXPECT_EQ(t[1][1][2].item<int>(), 255);
  EXPECT_EQ(t[0][1][0].item<int>(), 3);
}

TEST(IdxReader, ReadsGzip) {
  TempDir dir;
  write_idx(dir / "plain", {3}, {7, 8, 9});
  std::ifstream in(dir / "plain", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  gzFile gz = gzopen((dir / "x.gz").c_str(), "wb");
  gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(gz);
  auto t = read_idx_ubyte(dir / "x.gz", 1);
  EXPECT_EQ(t[2].item<int>(), 9);
}

TEST(IdxReader, MissingFile) {
  TempDir dir;
  EXPECT_EQ(idx_error_of(dir / "nope", 1), (dir / "nope").string() + ": file not found");
}

TEST(IdxReader, WrongMagic) {
  TempDir dir;
  testing::write_text(dir / "x", std::string("\x01\x00\x08\x01\x00\x00\x00\x01\x05", 9));
  EXPECT_NE(idx_error_of(dir / "x", 1).find("not an IDX file"), std::string::npos);
}

TEST(IdxReader, WrongTypeAndRank) {
  TempDir dir;
  testing::write_text(dir / "float", std::string("\x00\x00\x0d\x01\x00\x00\x00\x01", 8));
  EXPECT_NE(idx_error_of(dir / "float", 1).find("is not unsigned byte"), std::string::npos);
  write_idx(dir / "rank", {1, 1}, {1});
  EXPECT_NE(idx_error_of(dir / "rank", 3).find("has 2 dimensions, expected 3"), std::string::npos);
}

TEST(IdxReader, TruncatedData) {
  TempDir dir;
  write_idx(dir / "x", {10}, {1, 2, 3});
  EXPECT_EQ(idx_error_of(dir / "x", 1), (dir / "x").string() + ": truncated: expected 10 bytes of data, got 3");
}

TEST(IdxReader, TruncatedHeader) {
  TempDir dir;
  testing::write_text(dir / "x", std::string("\x00\x00\x08\x03\x00\x00", 6));
  EXPECT_NE(idx_error_of(dir / "x", 3).find("truncated IDX header"), std::string::npos);
}

TEST(IdxReader, TrailingBytes) {
  TempDir dir;
  write_idx(dir / "x", {2}, {1, 2, 3});
  EXPECT_NE(idx_error_of(dir / "x", 1).find("trailing bytes"), std::string::npos);
}

// Regression: a 20-byte file whose header declares 16 x 65536 x 65536 images made
// the reader allocate 64 GiB before reading; LibTorch's allocation error (c10::Error)
// escaped instead of a DataError.
TEST(IdxReader, SizesBeyondThePlainFileAreRejectedBeforeAllocating) {
  TempDir dir;
  write_idx(dir / "x", {16, 65536, 65536}, {1, 2, 3, 4});
  EXPECT_EQ(idx_error_of(dir / "x", 3),
            (dir / "x").string() + ": truncated: expected 68719476736 bytes of data, got 4");
}

TEST(IdxReader, SizesBeyondWhatTheGzipFileCanHoldAreRejectedBeforeAllocating) {
  TempDir dir;
  write_idx(dir / "plain", {1024, 1024, 1024}, {1, 2, 3});
  std::ifstream in(dir / "plain", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  gzFile gz = gzopen((dir / "x.gz").c_str(), "wb");
  gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(gz);
  const std::string error = idx_error_of(dir / "x.gz", 3);
  EXPECT_NE(error.find("truncated: expected 1073741824 bytes of data, more than a "), std::string::npos) << error;
  EXPECT_NE(error.find("-byte gzip file can hold"), std::string::npos) << error;
}

}  // namespace
}  // namespace sscl
