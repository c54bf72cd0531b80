// Helpers of the fuzz targets: a scratch folder that each input fills afresh, and
// the "bundle" format through which one fuzz input stands for several files.
//
// A bundle is a sequence of entries, each a header line `=== NAME` followed by
// the file's bytes up to the next line that starts with `=== ` (the newline before
// that header belongs to the header, so binary contents stay exact):
//
//   === wnids.txt
//   n01
//   === train/n01/images/a.png
//   <PNG bytes>
//
// Bytes before the first header are the file `lead_name` (none when empty). A
// NAME that ends in '/' makes an empty folder. Names are relative paths of plain
// components (letters, digits, '.', '_', '-'), never '.', '..' or absolute, so a
// fuzz input cannot write outside its folder; entries with other names are skipped.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace sscl::fuzz {

struct BundleEntry {
  std::string name;
  std::string_view content;
};

inline bool valid_component(std::string_view part) {
  if (part.empty() || part == "." || part == "..") return false;
  for (char c : part)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

// At most 5 components, so that a mutated name cannot build deep trees.
inline bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 120) return false;
  if (name.back() == '/') name.remove_suffix(1);
  int components = 0;
  for (size_t start = 0; start <= name.size(); ++components) {
    const size_t slash = std::min(name.find('/', start), name.size());
    if (components == 5 || !valid_component(name.substr(start, slash - start))) return false;
    start = slash + 1;
  }
  return true;
}

inline std::vector<BundleEntry> split_bundle(std::string_view input, const std::string& lead_name) {
  constexpr std::string_view kHeader = "=== ";
  std::vector<BundleEntry> entries;
  // Start of each header line: at 0 or right after a newline.
  std::vector<size_t> headers;
  if (input.substr(0, kHeader.size()) == kHeader) headers.push_back(0);
  for (size_t at = input.find("\n=== "); at != std::string_view::npos; at = input.find("\n=== ", at + 1))
    headers.push_back(at + 1);
  const size_t lead_end = headers.empty() ? input.size() : (headers[0] == 0 ? 0 : headers[0] - 1);
  if (!lead_name.empty() && lead_end > 0) entries.push_back({lead_name, input.substr(0, lead_end)});
  for (size_t h = 0; h < headers.size(); ++h) {
    const size_t name_begin = headers[h] + kHeader.size();
    const size_t line_end = std::min(input.find('\n', name_begin), input.size());
    const size_t content_begin = std::min(line_end + 1, input.size());
    const size_t content_end = h + 1 < headers.size() ? headers[h + 1] - 1 : input.size();
    std::string name(input.substr(name_begin, line_end - name_begin));
    if (!name.empty() && name.back() == '\r') name.pop_back();
    entries.push_back({name, input.substr(content_begin, std::max(content_begin, content_end) - content_begin)});
  }
  return entries;
}

// A folder of its own under the temp dir (TMPDIR; tools/fuzz points it at
// /dev/shm), emptied for every input and removed at exit.
class ScratchDir {
 public:
  ScratchDir() {
    static const std::filesystem::path base =
        std::filesystem::temp_directory_path() / ("sscl_fuzz_" + std::to_string(::getpid()));
    path_ = base;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

  // Writes the entries with valid names (at most 64); a name that collides with an
  // earlier file or folder is skipped. Returns the entries written.
  size_t write(const std::vector<BundleEntry>& entries) const {
    size_t written = 0;
    for (const BundleEntry& entry : entries) {
      if (written == 64) break;
      if (!valid_name(entry.name)) continue;
      const std::filesystem::path file = path_ / entry.name;
      std::error_code ec;
      if (entry.name.back() == '/') {
        std::filesystem::create_directories(file, ec);
        written += ec ? 0 : 1;
        continue;
      }
      std::filesystem::create_directories(file.parent_path(), ec);
      if (ec || std::filesystem::exists(file, ec)) continue;
      written += write_file(file, entry.content) ? 1 : 0;
    }
    return written;
  }

  static bool write_file(const std::filesystem::path& file, std::string_view content) {
    std::FILE* f = std::fopen(file.c_str(), "wb");
    if (!f) return false;
    const bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
    return std::fclose(f) == 0 && ok;
  }

 private:
  std::filesystem::path path_;
};

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace sscl::fuzz
