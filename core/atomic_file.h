#pragma once

#include <filesystem>
#include <string>

namespace sscl {

// Writes `content` to `path` so that readers see the old file or the whole new
// one, never a part: a temporary file beside it, flushed and fsync'ed, renamed.
// Throws IoError naming the path.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

}  // namespace sscl
