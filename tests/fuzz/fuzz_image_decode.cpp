// Fuzzes image decoding (OpenCV's PNG, JPEG, BMP, ... decoders behind
// decode_images) on raw bytes: the input is one image file, decoded to each
// channel count the readers ask for.
#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "datasets/image_decode.h"
#include "tests/fuzz/fuzz_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const sscl::fuzz::ScratchDir dir;
  const auto file = dir.path() / "image.png";  // OpenCV goes by the content, not the name
  if (!sscl::fuzz::ScratchDir::write_file(file, sscl::fuzz::as_text(data, size))) return 0;
  for (int channels : {0, 1, 3}) {
    try {
      const at::Tensor images = sscl::decode_images({file, file}, channels);
      const bool right_channels =
          channels == 0 ? images.size(3) == 1 || images.size(3) == 3 : images.size(3) == channels;
      if (images.dim() != 4 || images.size(0) != 2 || !right_channels || !images[0].equal(images[1])) {
        std::fprintf(stderr, "image decode fuzz: a file decoded twice gave a wrong or different tensor\n");
        std::abort();
      }
    } catch (const sscl::Error&) {
      return 0;  // undecodable for one channel count: for all
    }
  }
  return 0;
}
