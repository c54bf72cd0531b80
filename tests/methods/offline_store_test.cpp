// The offline tier's record store: byte-exact round trips on disk and in RAM,
// supersession and erasure, recovery of a file whose tail was cut or corrupted,
// clear(), gets racing the background writer, and errors that name the file.
#include "methods/edgehml/offline_store.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/test_util.h"

namespace sscl {
namespace {

constexpr int64_t kHeader = 20;  // magic u32 | id i64 | size u32 | crc u32

// `size` bytes that differ by id and position, so a mixed-up record shows.
std::vector<uint8_t> bytes_of(int64_t id, size_t size) {
  std::vector<uint8_t> b(size);
  for (size_t i = 0; i < size; ++i) b[i] = static_cast<uint8_t>(id * 31 + static_cast<int64_t>(i) * 7 + 1);
  return b;
}
void put(OfflineStore& store, int64_t id, const std::vector<uint8_t>& b) { store.put(id, b.data(), b.size()); }
size_t size_for(int64_t id) { return static_cast<size_t>(1 + (id * 37) % 300); }  // 1..300 bytes, varied

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no sscl::Error thrown>";
}

TEST(OfflineStore, DiskRoundTripSupersedeEraseAndSizes) {
  testing::TempDir dir;
  const auto file = dir / "sub" / "store.bin";  // the folder is created by the store
  OfflineStore store(OfflineStorage::kDisk, file);
  EXPECT_EQ(store.records_recovered(), 0);
  EXPECT_EQ(store.bytes_truncated(), 0);
  int64_t expected_file = 0;
  for (int64_t id = 0; id < 10; ++id) {
    put(store, id, bytes_of(id, size_for(id)));
    expected_file += kHeader + static_cast<int64_t>(size_for(id));
  }
  put(store, 100, {});  // an empty record is legal
  expected_file += kHeader;
  EXPECT_EQ(store.size(), 11u);
  EXPECT_TRUE(store.contains(3));
  EXPECT_FALSE(store.contains(11));
  // Before flush: served from the queue or from the file, either way byte-exact.
  for (int64_t id = 0; id < 10; ++id) EXPECT_EQ(store.get(id), bytes_of(id, size_for(id))) << id;
  store.flush();
  EXPECT_EQ(store.bytes_on_disk(), expected_file);
  EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(file)), expected_file);
  for (int64_t id = 0; id < 10; ++id) EXPECT_EQ(store.get(id), bytes_of(id, size_for(id))) << id;
  EXPECT_TRUE(store.get(100).empty());

  // A re-put supersedes; the old record stays in the append-only file.
  put(store, 4, bytes_of(999, 17));
  EXPECT_EQ(store.get(4), bytes_of(999, 17));
  store.flush();
  EXPECT_EQ(store.get(4), bytes_of(999, 17));
  EXPECT_EQ(store.size(), 11u);
  EXPECT_EQ(store.bytes_on_disk(), expected_file + kHeader + 17);

  store.erase(5);
  store.erase(12345);  // absent: a no-op
  EXPECT_FALSE(store.contains(5));
  EXPECT_EQ(store.size(), 10u);
  EXPECT_THROW(store.get(5), Error);
  EXPECT_EQ(store.bytes_on_disk(), expected_file + kHeader + 17);  // erase does not touch the file
  EXPECT_GT(store.bytes_in_ram(), 0);
}

TEST(OfflineStore, RamRoundTripNeverTouchesDisk) {
  testing::TempDir dir;
  const auto file = dir / "unused.bin";
  OfflineStore store(OfflineStorage::kRam, file);
  for (int64_t id = 0; id < 8; ++id) put(store, id, bytes_of(id, size_for(id)));
  put(store, 2, bytes_of(77, 5));
  store.erase(3);
  store.flush();
  EXPECT_EQ(store.size(), 7u);
  EXPECT_FALSE(store.contains(3));
  EXPECT_EQ(store.get(2), bytes_of(77, 5));
  EXPECT_EQ(store.get(6), bytes_of(6, size_for(6)));
  EXPECT_THROW(store.get(3), Error);
  EXPECT_EQ(store.bytes_on_disk(), 0);
  EXPECT_FALSE(std::filesystem::exists(file));
  int64_t payload = 5;
  for (int64_t id : {0, 1, 4, 5, 6, 7}) payload += static_cast<int64_t>(size_for(id));
  EXPECT_GE(store.bytes_in_ram(), payload);
  store.clear();
  EXPECT_EQ(store.size(), 0u);
  EXPECT_LT(store.bytes_in_ram(), payload);
}

TEST(OfflineStore, ReopenRecoversEveryRecordNewestWins) {
  testing::TempDir dir;
  const auto file = dir / "store.bin";
  {
    OfflineStore store(OfflineStorage::kDisk, file);
    for (int64_t id = 0; id < 20; ++id) put(store, id, bytes_of(id, size_for(id)));
    put(store, 7, bytes_of(70, 9));  // supersedes id 7
    // No flush: the destructor drains the queue.
  }
  OfflineStore store(OfflineStorage::kDisk, file);
  EXPECT_EQ(store.records_recovered(), 21);
  EXPECT_EQ(store.bytes_truncated(), 0);
  EXPECT_EQ(store.size(), 20u);
  for (int64_t id = 0; id < 20; ++id)
    EXPECT_EQ(store.get(id), id == 7 ? bytes_of(70, 9) : bytes_of(id, size_for(id))) << id;
}

// Writes `n` records, closes the store and returns the file size.
int64_t write_records(const std::filesystem::path& file, int64_t n) {
  OfflineStore store(OfflineStorage::kDisk, file);
  for (int64_t id = 0; id < n; ++id) put(store, id, bytes_of(id, size_for(id)));
  store.flush();
  return store.bytes_on_disk();
}

void expect_records(OfflineStore& store, int64_t n) {
  EXPECT_EQ(store.size(), static_cast<size_t>(n));
  for (int64_t id = 0; id < n; ++id) EXPECT_EQ(store.get(id), bytes_of(id, size_for(id))) << id;
}

TEST(OfflineStore, RecoveryTruncatesAPartiallyWrittenRecord) {
  testing::TempDir dir;
  const auto file = dir / "store.bin";
  constexpr int64_t kN = 6;
  const int64_t good_end = write_records(file, kN);
  {
    // A crash halfway through a 40-byte record: a valid header, half the payload.
    const uint8_t header[kHeader] = {'S', 'S', 'O', 'R', 50, 0, 0, 0, 0, 0, 0, 0, 40, 0, 0, 0, 1, 2, 3, 4};
    std::ofstream out(file, std::ios::binary | std::ios::app);
    out.write(reinterpret_cast<const char*>(header), kHeader);
    out.write(reinterpret_cast<const char*>(bytes_of(50, 20).data()), 20);
  }
  ASSERT_EQ(static_cast<int64_t>(std::filesystem::file_size(file)), good_end + kHeader + 20);
  {
    OfflineStore store(OfflineStorage::kDisk, file);
    EXPECT_EQ(store.records_recovered(), kN);
    EXPECT_EQ(store.bytes_truncated(), kHeader + 20);
    EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(file)), good_end);
    EXPECT_EQ(store.bytes_on_disk(), good_end);
    EXPECT_FALSE(store.contains(50));
    expect_records(store, kN);
    // New records follow the good ones and survive another reopen.
    put(store, kN, bytes_of(kN, size_for(kN)));
  }
  OfflineStore store(OfflineStorage::kDisk, file);
  EXPECT_EQ(store.records_recovered(), kN + 1);
  EXPECT_EQ(store.bytes_truncated(), 0);
  expect_records(store, kN + 1);
}

TEST(OfflineStore, RecoveryTruncatesARecordWithABadChecksum) {
  testing::TempDir dir;
  const auto file = dir / "store.bin";
  constexpr int64_t kN = 5;
  const int64_t end = write_records(file, kN);
  const int64_t last = kHeader + static_cast<int64_t>(size_for(kN - 1));
  {
    // Flip the last payload byte of the last record.
    std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(end - 1);
    const char c = static_cast<char>(f.get() ^ 0x5A);
    f.seekp(end - 1);
    f.put(c);
  }
  {
    OfflineStore store(OfflineStorage::kDisk, file);
    EXPECT_EQ(store.records_recovered(), kN - 1);
    EXPECT_EQ(store.bytes_truncated(), last);
    EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(file)), end - last);
    EXPECT_FALSE(store.contains(kN - 1));
    expect_records(store, kN - 1);
    put(store, kN - 1, bytes_of(kN - 1, size_for(kN - 1)));  // rewritten after recovery
    put(store, kN, bytes_of(kN, size_for(kN)));
  }
  OfflineStore store(OfflineStorage::kDisk, file);
  EXPECT_EQ(store.records_recovered(), kN + 1);
  EXPECT_EQ(store.bytes_truncated(), 0);
  expect_records(store, kN + 1);
}

TEST(OfflineStore, RecoveryStopsAtABadMagic) {
  testing::TempDir dir;
  const auto file = dir / "store.bin";
  const int64_t end = write_records(file, 3);
  {
    std::ofstream out(file, std::ios::binary | std::ios::app);
    out << std::string(64, 'x');
  }
  OfflineStore store(OfflineStorage::kDisk, file);
  EXPECT_EQ(store.records_recovered(), 3);
  EXPECT_EQ(store.bytes_truncated(), 64);
  EXPECT_EQ(store.bytes_on_disk(), end);
  expect_records(store, 3);
}

TEST(OfflineStore, ClearTruncatesAndEmpties) {
  testing::TempDir dir;
  const auto file = dir / "store.bin";
  OfflineStore store(OfflineStorage::kDisk, file);
  for (int64_t id = 0; id < 50; ++id) put(store, id, bytes_of(id, 1000));
  store.clear();  // some of these may still be queued
  EXPECT_EQ(store.size(), 0u);
  EXPECT_FALSE(store.contains(0));
  EXPECT_EQ(store.bytes_on_disk(), 0);
  EXPECT_EQ(std::filesystem::file_size(file), 0u);
  EXPECT_THROW(store.get(0), Error);
  put(store, 1, bytes_of(1, 10));
  store.flush();
  EXPECT_EQ(store.bytes_on_disk(), kHeader + 10);
  EXPECT_EQ(store.get(1), bytes_of(1, 10));
}

TEST(OfflineStore, ManyPutsThenImmediateGets) {
  testing::TempDir dir;
  OfflineStore store(OfflineStorage::kDisk, dir / "store.bin");
  constexpr int64_t kN = 2000;
  for (int64_t id = 0; id < kN; ++id) put(store, id, bytes_of(id, 784));
  // Re-put every tenth id while the writer is busy: gets must see the newest.
  for (int64_t id = 0; id < kN; id += 10) put(store, id, bytes_of(id + 1, 100));
  EXPECT_GT(store.bytes_in_ram(), 0);
  for (int64_t id = kN - 1; id >= 0; --id)
    ASSERT_EQ(store.get(id), id % 10 == 0 ? bytes_of(id + 1, 100) : bytes_of(id, 784)) << id;
  store.flush();
  EXPECT_EQ(store.bytes_on_disk(), kN * (kHeader + 784) + (kN / 10) * (kHeader + 100));
  EXPECT_EQ(store.get(10), bytes_of(11, 100));
  EXPECT_EQ(store.get(11), bytes_of(11, 784));
}

TEST(OfflineStore, GetOfAnAbsentIdNamesTheFile) {
  testing::TempDir dir;
  const auto file = dir / "store.bin";
  OfflineStore store(OfflineStorage::kDisk, file);
  put(store, 1, bytes_of(1, 3));
  const auto message = message_of([&] { store.get(2); });
  EXPECT_NE(message.find(file.string()), std::string::npos) << message;
  EXPECT_NE(message.find("2"), std::string::npos) << message;
}

TEST(OfflineStore, UnwritablePathThrowsNamingIt) {
  testing::TempDir dir;
  testing::write_text(dir / "plain_file", "x");
  const auto file = dir / "plain_file" / "store.bin";  // its folder would be a regular file
  const auto message = message_of([&] { OfflineStore store(OfflineStorage::kDisk, file); });
  EXPECT_NE(message.find(file.string()), std::string::npos) << message;
}

TEST(OfflineStore, WriterFailureIsRethrownNotFatal) {
  // /dev/full accepts open() and fails every write with ENOSPC: the background
  // writer must keep the error for the next call instead of terminating.
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  OfflineStore store(OfflineStorage::kDisk, "/dev/full");
  put(store, 1, bytes_of(1, 10));
  const auto message = message_of([&] { store.flush(); });
  EXPECT_NE(message.find("/dev/full"), std::string::npos) << message;
  EXPECT_FALSE(store.contains(1));  // its bytes never reached the file
  EXPECT_NO_THROW(store.flush());   // reported once
}

TEST(OfflineStore, ParseStorageNames) {
  EXPECT_EQ(parse_offline_storage("disk"), OfflineStorage::kDisk);
  EXPECT_EQ(parse_offline_storage("ram"), OfflineStorage::kRam);
  try {
    parse_offline_storage("tape");
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("disk"), std::string::npos) << m;
    EXPECT_NE(m.find("ram"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace sscl
