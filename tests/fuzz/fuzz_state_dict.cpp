// Fuzzes model.pretrained's reader on raw bytes: the input is one weights file
// (torch.save's zip, an sscl model.pt or checkpoint, anything else). Beyond "no
// crash": an accepted file's tensors are named, defined and on the CPU.
#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "core/nn/state_dict_file.h"
#include "tests/fuzz/fuzz_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const sscl::fuzz::ScratchDir dir;
  const auto file = dir.path() / "weights.pt";
  if (!sscl::fuzz::ScratchDir::write_file(file, sscl::fuzz::as_text(data, size))) return 0;
  try {
    const auto read = sscl::read_state_dict_file(file);
    for (const auto& [name, tensor] : read.tensors)
      if (name.empty() || !tensor.defined() || !tensor.device().is_cpu()) {
        std::fprintf(stderr, "state_dict fuzz: accepted an unnamed, undefined or non-CPU tensor\n");
        std::abort();
      }
  } catch (const sscl::Error&) {
    // rejected with a message
  }
  return 0;
}
