#include "methods/edgehml/offline_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <system_error>

#include "core/error.h"

namespace sscl {
namespace {

constexpr uint32_t kMagic = 0x524F5353u;         // the bytes 'S' 'S' 'O' 'R' read as a little-endian u32
constexpr int64_t kHeaderBytes = 4 + 8 + 4 + 4;  // magic | id | payload bytes | crc32

// Explicit little-endian coding, so the file means the same on any host.
void put_le(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

uint32_t record_checksum(const uint8_t* data, size_t size) {
  return static_cast<uint32_t>(crc32(0L, data, static_cast<uInt>(size)));
}

struct RecordHeader {
  uint32_t magic;
  int64_t id;
  uint32_t size;
  uint32_t crc;
};
RecordHeader decode_header(const uint8_t* p) {
  return {static_cast<uint32_t>(get_le(p, 4)), static_cast<int64_t>(get_le(p + 4, 8)),
          static_cast<uint32_t>(get_le(p + 12, 4)), static_cast<uint32_t>(get_le(p + 16, 4))};
}

// Full pread/pwrite: both may transfer less than asked or be interrupted.
// Returns the bytes read (short only at end of file), or -1 with errno set.
int64_t pread_all(int fd, uint8_t* buf, size_t n, int64_t offset) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, buf + done, n - done, static_cast<off_t>(offset + static_cast<int64_t>(done)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return static_cast<int64_t>(done);
}
bool pwrite_all(int fd, const uint8_t* buf, size_t n, int64_t offset) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pwrite(fd, buf + done, n - done, static_cast<off_t>(offset + static_cast<int64_t>(done)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<size_t>(r);
  }
  return true;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

OfflineStorage parse_offline_storage(const std::string& name) {
  if (name == "disk") return OfflineStorage::kDisk;
  if (name == "ram") return OfflineStorage::kRam;
  throw ConfigError("offline storage '" + name + "' is unknown; accepted values: disk, ram");
}

OfflineStore::OfflineStore(OfflineStorage storage, std::filesystem::path path)
    : storage_(storage), path_(std::move(path)) {
  if (storage_ == OfflineStorage::kRam) return;
  check<Error>(!path_.empty(), "offline store: disk storage needs a file path");
  if (path_.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path_.parent_path(), ec);
    check<Error>(!ec, where() + ": cannot create its folder: " + ec.message());
  }
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  check<Error>(fd_ >= 0, where() + ": cannot open: " + errno_text());
  try {
    recover();
    writer_ = std::thread([this] { writer_loop(); });
  } catch (...) {
    ::close(fd_);  // no destructor runs for a half-built store
    throw;
  }
}

OfflineStore::~OfflineStore() {
  if (storage_ == OfflineStorage::kRam) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  queued_.notify_one();
  writer_.join();  // the writer empties the queue before it returns
  // A failure of the last writes cannot be thrown from here; recovery at the next
  // open drops whatever tail it left.
  ::close(fd_);
}

std::string OfflineStore::where() const {
  return storage_ == OfflineStorage::kRam ? std::string("offline store (RAM)") : "offline store " + path_.string();
}

void OfflineStore::rethrow_writer_error() {
  if (!writer_error_) return;
  // Reported once: the caller learns that some puts were lost; later puts may succeed.
  const std::string message = std::move(*writer_error_);
  writer_error_.reset();
  throw Error(message);
}

void OfflineStore::recover() {
  struct stat st {};
  check<Error>(::fstat(fd_, &st) == 0, where() + ": cannot stat: " + errno_text());
  const int64_t end = static_cast<int64_t>(st.st_size);
  int64_t offset = 0;
  uint8_t raw[kHeaderBytes];
  std::vector<uint8_t> payload;
  while (offset + kHeaderBytes <= end) {
    const int64_t got = pread_all(fd_, raw, kHeaderBytes, offset);
    check<Error>(got >= 0, where() + ": cannot read: " + errno_text());
    if (got < kHeaderBytes) break;
    const RecordHeader h = decode_header(raw);
    // Size is checked against the file before allocating: a garbage header must
    // not ask for gigabytes.
    if (h.magic != kMagic || offset + kHeaderBytes + static_cast<int64_t>(h.size) > end) break;
    payload.resize(h.size);
    const int64_t read = pread_all(fd_, payload.data(), h.size, offset + kHeaderBytes);
    check<Error>(read >= 0, where() + ": cannot read: " + errno_text());
    if (read < static_cast<int64_t>(h.size) || record_checksum(payload.data(), h.size) != h.crc) break;
    index_[h.id] = Location{offset + kHeaderBytes, h.size, next_generation_++};  // newest record wins
    ++recovered_;
    offset += kHeaderBytes + h.size;
  }
  // Everything after the last good record goes, so new records follow good ones
  // and a later scan does not stop early at the old broken tail.
  truncated_ = end - offset;
  if (truncated_ > 0)
    check<Error>(::ftruncate(fd_, static_cast<off_t>(offset)) == 0,
                 where() + ": cannot truncate the corrupt tail: " + errno_text());
  file_size_ = offset;
}

void OfflineStore::writer_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  std::vector<uint8_t> record;
  for (;;) {
    queued_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_ and nothing left to write
    Pending item = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    // Only this thread and clear() move file_size_, and clear() waits for
    // writing_ to drop, so the offset stays valid while unlocked.
    const int64_t offset = file_size_;
    lock.unlock();

    const auto n = item.bytes.size();
    record.resize(static_cast<size_t>(kHeaderBytes) + n);
    put_le(record.data(), kMagic, 4);
    put_le(record.data() + 4, static_cast<uint64_t>(item.id), 8);
    put_le(record.data() + 12, n, 4);
    put_le(record.data() + 16, record_checksum(item.bytes.data(), n), 4);
    if (n > 0) std::memcpy(record.data() + kHeaderBytes, item.bytes.data(), n);
    const bool ok = pwrite_all(fd_, record.data(), record.size(), offset);
    const std::string failure = ok ? std::string() : errno_text();
    // A partial record past file_size_ would otherwise sit behind the next one.
    if (!ok) (void)::ftruncate(fd_, static_cast<off_t>(offset));

    lock.lock();
    writing_ = false;
    queued_bytes_ -= static_cast<int64_t>(n);
    auto it = index_.find(item.id);
    const bool current = it != index_.end() && it->second.generation == item.generation;
    if (ok) {
      file_size_ = offset + static_cast<int64_t>(record.size());
      if (current) it->second.offset = offset + kHeaderBytes;  // superseded or erased ids stay as they are
    } else {
      // Never throw here (that would terminate): keep the error for the next caller
      // and forget the id, whose bytes are not on disk.
      if (!writer_error_)
        writer_error_ = where() + ": cannot write the record of id " + std::to_string(item.id) + ": " + failure;
      if (current) index_.erase(it);
    }
    drained_.notify_all();  // get() waits for its record, flush()/clear() for an empty queue
  }
}

void OfflineStore::put(int64_t id, const uint8_t* data, size_t size) {
  check<Error>(size <= std::numeric_limits<uint32_t>::max(),
               where() + ": record of id " + std::to_string(id) + " exceeds 4 GiB");
  std::vector<uint8_t> bytes(data, data + size);  // copied before taking the lock
  std::lock_guard<std::mutex> lock(mutex_);
  if (storage_ == OfflineStorage::kRam) {
    auto& slot = ram_[id];
    ram_bytes_ += static_cast<int64_t>(size) - static_cast<int64_t>(slot.size());
    slot = std::move(bytes);
    return;
  }
  rethrow_writer_error();
  const uint64_t generation = next_generation_++;
  index_[id] = Location{-1, static_cast<uint32_t>(size), generation};
  queued_bytes_ += static_cast<int64_t>(size);
  queue_.push_back(Pending{id, generation, std::move(bytes)});
  queued_.notify_one();
}

void OfflineStore::erase(int64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (storage_ == OfflineStorage::kRam) {
    auto it = ram_.find(id);
    if (it == ram_.end()) return;
    ram_bytes_ -= static_cast<int64_t>(it->second.size());
    ram_.erase(it);
    return;
  }
  index_.erase(id);  // a queued record is still written but no longer indexed (generation mismatch)
}

bool OfflineStore::contains(int64_t id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return storage_ == OfflineStorage::kRam ? ram_.count(id) > 0 : index_.count(id) > 0;
}

std::vector<uint8_t> OfflineStore::get(int64_t id) {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto absent = [&] { return Error(where() + ": no record of id " + std::to_string(id)); };
  if (storage_ == OfflineStorage::kRam) {
    auto it = ram_.find(id);
    if (it == ram_.end()) throw absent();
    return it->second;
  }
  Location at;
  for (;;) {
    rethrow_writer_error();
    auto it = index_.find(id);
    if (it == index_.end()) throw absent();
    at = it->second;
    if (at.offset >= 0) break;
    // Still queued: serve the newest pending copy rather than wait for the disk.
    for (auto q = queue_.rbegin(); q != queue_.rend(); ++q)
      if (q->id == id && q->generation == at.generation) return q->bytes;
    // The writer holds it right now; the index changes when it is done.
    drained_.wait(lock);
  }
  lock.unlock();

  // Records below file_size_ are immutable until clear(), so this read needs no lock.
  std::vector<uint8_t> record(static_cast<size_t>(kHeaderBytes) + at.size);
  const int64_t got = pread_all(fd_, record.data(), record.size(), at.offset - kHeaderBytes);
  const std::string what = where() + ": cannot read the record of id " + std::to_string(id) + " at offset " +
                           std::to_string(at.offset - kHeaderBytes);
  check<Error>(got >= 0, what + ": " + errno_text());
  check<Error>(got == static_cast<int64_t>(record.size()), what + ": file too short");
  const RecordHeader h = decode_header(record.data());
  check<Error>(h.magic == kMagic && h.id == id && h.size == at.size, what + ": bad header");
  check<Error>(record_checksum(record.data() + kHeaderBytes, at.size) == h.crc, what + ": checksum mismatch");
  return std::vector<uint8_t>(record.begin() + kHeaderBytes, record.end());
}

void OfflineStore::flush() {
  if (storage_ == OfflineStorage::kRam) return;
  std::unique_lock<std::mutex> lock(mutex_);
  drained_.wait(lock, [this] { return queue_.empty() && !writing_; });
  // pwrite() hands bytes straight to the kernel, so once the queue is drained they
  // are flushed to the OS; no fsync: surviving a power loss is not the goal.
  rethrow_writer_error();
}

void OfflineStore::clear() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (storage_ == OfflineStorage::kRam) {
    ram_.clear();
    ram_bytes_ = 0;
    return;
  }
  // Pending records would be truncated away anyway: drop them instead of writing.
  queue_.clear();
  queued_bytes_ = 0;
  drained_.wait(lock, [this] { return !writing_; });
  index_.clear();
  check<Error>(::ftruncate(fd_, 0) == 0, where() + ": cannot truncate: " + errno_text());
  file_size_ = 0;
}

size_t OfflineStore::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return storage_ == OfflineStorage::kRam ? ram_.size() : index_.size();
}

int64_t OfflineStore::bytes_on_disk() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return file_size_;
}

int64_t OfflineStore::bytes_in_ram() const {
  std::lock_guard<std::mutex> lock(mutex_);
  // Approximate: hash-map nodes are counted as key + value, without bucket overhead.
  const auto entries = static_cast<int64_t>(index_.size() * (sizeof(int64_t) + sizeof(Location)) +
                                            ram_.size() * (sizeof(int64_t) + sizeof(std::vector<uint8_t>)));
  return entries + queued_bytes_ + ram_bytes_;
}

}  // namespace sscl
