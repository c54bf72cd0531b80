// Decoding image files (PNG, JPEG, BMP, ...) with OpenCV into one uint8 tensor,
// shared by the TinyImageNet and image-folder readers.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>
#include <vector>

namespace sscl {

// Decodes `files` in parallel (TBB) into one [N, H, W, C] uint8 contiguous tensor,
// in the order given. `channels`: 3 = RGB (gray images replicated), 1 = gray
// (colour images converted), 0 = 1 if every image is single-channel, else 3. Alpha
// is dropped. Every image must be as large as `reference` (the first file when
// empty); nothing is resized. Throws DataError naming the file that is missing,
// undecodable or of another size (the first such file in the list).
at::Tensor decode_images(const std::vector<std::filesystem::path>& files, int channels,
                         const std::filesystem::path& reference = {});

// Regular files under `dir` (not recursive, hidden files skipped) whose extension
// is one of `extensions` (lower case with the dot, compared case-insensitively),
// sorted by name so that the order is the same on every file system.
std::vector<std::filesystem::path> list_images(const std::filesystem::path& dir,
                                               const std::vector<std::string>& extensions);

}  // namespace sscl
