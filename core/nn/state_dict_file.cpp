#include "core/nn/state_dict_file.h"

#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <fstream>
#include <iterator>
#include <string_view>

#include "core/error.h"
#include "core/nn/state_dict_pickle.h"

namespace sscl {
namespace fs = std::filesystem;
namespace {

// Every parameter and buffer of a TorchScript module, with dotted names.
std::vector<std::pair<std::string, at::Tensor>> module_tensors(const torch::jit::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) tensors.emplace_back(p.name, p.value);
  for (const auto& b : module.named_buffers(/*recurse=*/true)) tensors.emplace_back(b.name, b.value);
  return tensors;
}

// sscl's model.pt (torch::save of the model) or checkpoint (its "model" archive).
void read_sscl_archive(const std::string& bytes, StateDictFile& out) {
  auto module = torch::jit::load(
      std::make_shared<caffe2::serialize::MemoryReadAdapter>(bytes.data(), static_cast<off_t>(bytes.size())), at::kCPU);
  if (module.hasattr("format") && module.hasattr("model") && module.attr("model").isModule()) {
    out.format = "sscl checkpoint";
    out.tensors = module_tensors(module.attr("model").toModule());
  } else {
    out.format = "sscl model.pt";
    out.tensors = module_tensors(module);
  }
}

// A torch.save file: a state_dict, or a checkpoint dict holding one.
void read_torch_save(caffe2::serialize::PyTorchStreamReader& reader, StateDictFile& out) {
  if (!reader.hasRecord("data.pkl")) throw IoError("a zip without data.pkl: not written by torch.save");
  const auto [pickle, size] = reader.getRecord("data.pkl");
  const auto storage = [&reader](const std::string& key) {
    const std::string name = "data/" + key;
    if (!reader.hasRecord(name)) throw IoError("the pickle names a storage " + name + " the zip does not hold");
    const auto [data, bytes] = reader.getRecord(name);
    return std::string(static_cast<const char*>(data.get()), bytes);
  };
  PickledStateDict read = unpickle_state_dict(std::string_view(static_cast<const char*>(pickle.get()), size), storage);
  out.format = read.under.empty() ? "torch.save state_dict" : "torch.save checkpoint['" + read.under + "']";
  out.tensors = std::move(read.tensors);
}

// A zip must end with its end-of-central-directory record, whose central
// directory lies inside the file. LibTorch 1.13's PyTorchStreamReader leaks its
// miniz state when its constructor throws (it never calls mz_zip_reader_end), so
// the commonest bad zip, a truncated file, is refused here first.
bool zip_end_is_sound(const std::string& bytes) {
  constexpr size_t kEocd = 22;
  if (bytes.size() < kEocd) return false;
  const size_t lowest = bytes.size() > kEocd + 65535 ? bytes.size() - kEocd - 65535 : 0;
  for (size_t at = bytes.size() - kEocd + 1; at-- > lowest;) {
    if (bytes.compare(at, 4, "PK\x05\x06") != 0) continue;
    const auto u16 = [&](size_t o) {
      return static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + o])) |
             static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + o + 1])) << 8;
    };
    const auto u32 = [&](size_t o) { return u16(o) | u16(o + 2) << 16; };
    const uint64_t comment = u16(20), cd_size = u32(12), cd_offset = u32(16);
    if (at + kEocd + comment != bytes.size()) continue;
    if (cd_offset == 0xffffffffu || cd_size == 0xffffffffu) return true;  // zip64: LibTorch reads the rest
    return cd_offset + cd_size <= at;
  }
  return false;
}

}  // namespace

StateDictFile read_state_dict_file(const fs::path& path) {
  StateDictFile out;
  out.path = path;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": no such file, or not readable");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // torch.save before PyTorch 1.6 (or with _use_new_zipfile_serialization=False):
  // a pickle of a magic number, then raw storages.
  if (bytes.size() >= 4 && static_cast<unsigned char>(bytes[0]) == 0x80 && static_cast<unsigned char>(bytes[2]) == 0x8a)
    throw IoError(path.string() +
                  ": PyTorch's legacy (non-zip) format, which is not read; re-save it in Python with "
                  "torch.save(torch.load(OLD), NEW) (PyTorch >= 1.6 writes the zip format)");
  if (bytes.compare(0, 4, "PK\x03\x04") != 0)
    throw IoError(path.string() + ": not a PyTorch weights file (torch.save's zip format, an sscl model.pt or " +
                  "checkpoint)");
  if (!zip_end_is_sound(bytes))
    throw IoError(path.string() + ": truncated, or not a zip: no end-of-central-directory record fits the file");
  try {
    caffe2::serialize::PyTorchStreamReader reader(
        std::make_shared<caffe2::serialize::MemoryReadAdapter>(bytes.data(), static_cast<off_t>(bytes.size())));
    if (reader.hasRecord("constants.pkl"))
      read_sscl_archive(bytes, out);
    else
      read_torch_save(reader, out);
  } catch (const IoError& e) {
    throw IoError(path.string() + ": " + e.what());
  } catch (const c10::Error& e) {
    throw IoError(path.string() + ": not a readable PyTorch file, or truncated (" + e.what_without_backtrace() + ")");
  }
  return out;
}

std::string state_dict_bytes(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : tensors) dict.insert(name, tensor.detach().to(at::kCPU).contiguous());
  const std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(dict));
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace sscl
