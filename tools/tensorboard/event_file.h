// TensorBoard's event files (RUN_DIR/tb/events.out.tfevents.*), written and read
// by sscl. A file is a sequence of TFRecords, each
//
//   uint64 length (little-endian), uint32 masked CRC32C of those 8 bytes,
//   `length` bytes of data, uint32 masked CRC32C of the data,
//
// masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8, and each record's data
// is an Event protocol buffer (tools/tensorboard/tensorboard.proto, the public
// schema's field numbers). The first Event holds file_version "brain.Event:2".
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sscl {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), and TFRecord's mask of it.
uint32_t crc32c(std::string_view data);
uint32_t masked_crc32c(std::string_view data);
// `data` in a TFRecord's framing.
std::string tfrecord(std::string_view data);

// Appends Events to one file; each record is flushed as it is written, so a
// killed run keeps every record but, at worst, a last partial one.
class EventFileWriter {
 public:
  // Opens `file` for appending (created with its parent folder if missing); an
  // empty file gets the file_version Event first.
  explicit EventFileWriter(std::filesystem::path file);

  void scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values);
  // `image`: 8-bit, 1 or 3 channels in OpenCV's BGR order; stored as PNG.
  void image(int64_t step, const std::string& tag, const cv::Mat& image);
  // A text summary (the text plugin's rank-0 string tensor); TensorBoard renders Markdown.
  void text(int64_t step, const std::string& tag, const std::string& text);

  const std::filesystem::path& path() const { return path_; }

 private:
  void write(const std::string& event_bytes);
  std::filesystem::path path_;
  std::ofstream out_;
};

// One summary value as read back.
struct EventValue {
  std::string tag;
  std::string kind;  // "scalar", "image" or "text"
  double scalar = 0;
  std::string text;
  int height = 0, width = 0;
  std::string png;  // the encoded image
};
struct Event {
  int64_t step = 0;
  double wall_time = 0;
  std::string file_version;  // set on the first Event only
  std::vector<EventValue> values;
};
struct EventFile {
  std::vector<Event> events;  // every record before the first bad one
  uint64_t good_bytes = 0;    // where the last good record ends
  std::string error;          // empty, or "FILE: record N (byte B): what is wrong" (a truncated or damaged record)
};

// Reads every record, checking both CRCs and decoding each Event. A truncated
// or damaged record stops the reading: `error` names the file, the record and
// its byte offset, and `events` holds the records before it. IoError when the
// file cannot be opened.
EventFile read_event_file(const std::filesystem::path& file);

}  // namespace sscl
