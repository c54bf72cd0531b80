// File-system checks for the dataset readers. std::filesystem's throwing
// is_directory/is_regular_file/exists raise filesystem_error for anything but
// "not there" (a name longer than NAME_MAX, a permission denied); names read from a
// dataset's own text files reach these checks, so such errors must become a
// DataError naming the path, not an exception no reader caller expects.
#pragma once

#include <filesystem>
#include <system_error>

#include "core/error.h"

namespace sscl {

// The file's type; a missing path (or one through a non-directory) is not_found,
// any other failure to stat it is a DataError naming the path.
inline std::filesystem::file_type file_type_of(const std::filesystem::path& path) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::none)
    throw DataError(path.string() + ": cannot read: " + ec.message());
  return status.type();
}

inline bool is_directory_path(const std::filesystem::path& path) {
  return file_type_of(path) == std::filesystem::file_type::directory;
}

inline bool is_regular_file_path(const std::filesystem::path& path) {
  return file_type_of(path) == std::filesystem::file_type::regular;
}

inline bool path_exists(const std::filesystem::path& path) {
  return file_type_of(path) != std::filesystem::file_type::not_found;
}

}  // namespace sscl
