#include "tools/tensorboard/event_file.h"

#include <array>
#include <chrono>
#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "tensorboard/tensorboard.pb.h"  // generated (tools/CMakeLists.txt)

namespace sscl {

namespace fs = std::filesystem;

namespace {

// The CRC-32C table, built once. (No Debian package we use offers CRC-32C:
// zlib's crc32 is the other polynomial; sixteen lines do not justify Boost.)
const std::array<uint32_t, 256>& crc32c_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

std::string little_endian(uint64_t value, int bytes) {
  std::string out(static_cast<size_t>(bytes), '\0');
  for (int i = 0; i < bytes; ++i) out[static_cast<size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xff);
  return out;
}

uint64_t read_little_endian(const char* p, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return value;
}

double now_s() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

tensorboard::Event new_event(int64_t step) {
  tensorboard::Event event;
  event.set_wall_time(now_s());
  event.set_step(step);
  return event;
}

}  // namespace

uint32_t crc32c(std::string_view data) {
  const auto& table = crc32c_table();
  uint32_t crc = 0xFFFFFFFFu;
  for (const char c : data) crc = table[(crc ^ static_cast<unsigned char>(c)) & 0xff] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(std::string_view data) {
  const uint32_t crc = crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string tfrecord(std::string_view data) {
  const std::string length = little_endian(data.size(), 8);
  std::string out = length + little_endian(masked_crc32c(length), 4);
  out.append(data);
  out += little_endian(masked_crc32c(data), 4);
  return out;
}

EventFileWriter::EventFileWriter(fs::path file) : path_(std::move(file)) {
  std::error_code ec;
  fs::create_directories(path_.parent_path(), ec);
  const bool fresh = !fs::exists(path_) || fs::file_size(path_, ec) == 0;
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) throw IoError(path_.string() + ": cannot open for writing");
  if (fresh) {
    tensorboard::Event event = new_event(0);
    event.set_file_version("brain.Event:2");
    write(event.SerializeAsString());
  }
}

void EventFileWriter::write(const std::string& event_bytes) {
  out_ << tfrecord(event_bytes);
  out_.flush();
  if (!out_) throw IoError(path_.string() + ": write failed");
}

void EventFileWriter::scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  tensorboard::Event event = new_event(step);
  for (const auto& [tag, value] : values) {
    auto* v = event.mutable_summary()->add_value();
    v->set_tag(tag);
    v->set_simple_value(static_cast<float>(value));
  }
  write(event.SerializeAsString());
}

void EventFileWriter::image(int64_t step, const std::string& tag, const cv::Mat& image) {
  std::vector<uchar> png;
  if (!cv::imencode(".png", image, png)) throw Error("tensorboard: cannot encode the image " + tag + " as PNG");
  tensorboard::Event event = new_event(step);
  auto* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  auto* im = v->mutable_image();
  im->set_height(image.rows);
  im->set_width(image.cols);
  im->set_colorspace(image.channels());
  im->set_encoded_image_string(std::string(png.begin(), png.end()));
  write(event.SerializeAsString());
}

void EventFileWriter::text(int64_t step, const std::string& tag, const std::string& text) {
  tensorboard::Event event = new_event(step);
  auto* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->mutable_metadata()->mutable_plugin_data()->set_plugin_name("text");
  auto* tensor = v->mutable_tensor();
  tensor->set_dtype(7);  // DT_STRING
  tensor->add_string_val(text);
  write(event.SerializeAsString());
}

EventFile read_event_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError(file.string() + ": cannot open");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EventFile out;
  size_t at = 0;
  for (int64_t record = 1; at < bytes.size(); ++record) {
    const auto fail = [&](const std::string& what) {
      out.error = file.string() + ": record " + std::to_string(record) + " (byte " + std::to_string(at) + "): " + what;
    };
    if (bytes.size() - at < 12) {
      fail("truncated in its length header");
      break;
    }
    const std::string_view header(bytes.data() + at, 8);
    if (read_little_endian(bytes.data() + at + 8, 4) != masked_crc32c(header)) {
      fail("the length's CRC does not match");
      break;
    }
    const uint64_t length = read_little_endian(bytes.data() + at, 8);
    if (length > bytes.size() - at - 12 || bytes.size() - at - 12 - length < 4) {
      fail("truncated: " + std::to_string(length) + " bytes of data announced, " +
           std::to_string(bytes.size() - at - 12) + " left with the CRC");
      break;
    }
    const std::string_view data(bytes.data() + at + 12, length);
    if (read_little_endian(bytes.data() + at + 12 + length, 4) != masked_crc32c(data)) {
      fail("the data's CRC does not match");
      break;
    }
    tensorboard::Event parsed;
    if (!parsed.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
      fail("not an Event protocol buffer");
      break;
    }
    Event event;
    event.step = parsed.step();
    event.wall_time = parsed.wall_time();
    event.file_version = parsed.file_version();
    for (const auto& v : parsed.summary().value()) {
      EventValue value;
      value.tag = v.tag();
      if (v.has_image()) {
        value.kind = "image";
        value.height = v.image().height();
        value.width = v.image().width();
        value.png = v.image().encoded_image_string();
      } else if (v.has_tensor()) {
        value.kind = "text";
        if (v.tensor().string_val_size() > 0) value.text = v.tensor().string_val(0);
      } else {
        value.kind = "scalar";
        value.scalar = v.simple_value();
      }
      event.values.push_back(std::move(value));
    }
    out.events.push_back(std::move(event));
    at += 12 + length + 4;
    out.good_bytes = at;
  }
  return out;
}

}  // namespace sscl
