// The storage behind EdgeHML's offline tier: image bytes by training-set id, on
// disk (an append-only record file in the run directory, written by a background
// thread so that training never waits for the disk) or in RAM.
//
// File format, little-endian, one record per put():
//   u32 magic 'SSOR' | i64 id | u32 payload bytes | u32 crc32(payload) | payload
// A later record of the same id supersedes an earlier one; erase() only drops the
// id from the in-memory index (the file is append-only; clear() starts it anew).
// Opening an existing file scans it, keeps every complete record whose checksum
// holds and truncates a partially written or corrupt tail, so a crash during a
// write loses at most the record being written.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace sscl {

enum class OfflineStorage { kDisk, kRam };
// "disk" | "ram"; throws ConfigError otherwise.
OfflineStorage parse_offline_storage(const std::string& name);

class OfflineStore {
 public:
  // kDisk: records go to `path` (its folder is created; an existing file is
  // recovered as described above). kRam: `path` is ignored.
  OfflineStore(OfflineStorage storage, std::filesystem::path path);
  ~OfflineStore();  // drains the writer queue, then closes the file
  OfflineStore(const OfflineStore&) = delete;
  OfflineStore& operator=(const OfflineStore&) = delete;

  // Queues the bytes of image `id` (copied); returns at once. In RAM they are
  // stored directly.
  void put(int64_t id, const uint8_t* data, size_t size);
  // Drops `id` from the index (no-op when absent).
  void erase(int64_t id);
  // Whether `id` is indexed (queued puts count).
  bool contains(int64_t id) const;
  // The bytes of `id`: waits for the writer to reach its record first. Throws
  // sscl::Error naming the file when the id is absent or the record is unreadable.
  std::vector<uint8_t> get(int64_t id);
  // Blocks until every queued put is on disk (written and flushed).
  void flush();
  // Forgets everything and truncates the file.
  void clear();

  size_t size() const;                                      // ids indexed
  int64_t bytes_on_disk() const;                            // current file size (0 in RAM mode)
  int64_t bytes_in_ram() const;                             // index + queued payloads (+ payloads in RAM mode)
  int64_t records_recovered() const { return recovered_; }  // complete records found at open
  int64_t bytes_truncated() const { return truncated_; }    // tail dropped at open
  OfflineStorage storage() const { return storage_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Location {
    int64_t offset = -1;  // of the payload in the file; -1 while queued
    uint32_t size = 0;
    uint64_t generation = 0;  // put() sequence number, to match queued writes
  };
  struct Pending {
    int64_t id;
    uint64_t generation;
    std::vector<uint8_t> bytes;
  };
  void recover();
  void writer_loop();
  // Throws (and forgets) a failure the writer thread stored; mutex_ held.
  void rethrow_writer_error();
  std::string where() const;  // "offline store <path>" for messages

  OfflineStorage storage_;
  std::filesystem::path path_;
  mutable std::mutex mutex_;
  std::condition_variable queued_, drained_;
  std::deque<Pending> queue_;
  bool writing_ = false;  // the writer holds a record outside the queue
  bool stop_ = false;
  uint64_t next_generation_ = 0;
  std::unordered_map<int64_t, Location> index_;            // kDisk
  std::unordered_map<int64_t, std::vector<uint8_t>> ram_;  // kRam payloads
  int64_t ram_bytes_ = 0;
  int64_t queued_bytes_ = 0;
  int64_t file_size_ = 0;  // end of the last record written; only the writer and clear() move it
  int64_t recovered_ = 0;
  int64_t truncated_ = 0;
  std::optional<std::string> writer_error_;
  // One POSIX descriptor: the writer pwrite()s past file_size_ while get() pread()s
  // records already written, so neither needs a shared stream position or lock
  // during the I/O itself.
  int fd_ = -1;
  std::thread writer_;
};

}  // namespace sscl
