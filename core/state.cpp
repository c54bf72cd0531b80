#include "core/state.h"

#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"

namespace sscl {

namespace {
// The archive key of the field list; no field name starts with "__".
constexpr const char* kManifestKey = "__state_fields__";

void fnv1a(std::uint64_t& hash, const void* data, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    hash ^= bytes[i];
    hash *= 1099511628211ULL;
  }
}
}  // namespace

struct StateVisitor::Manifest {
  std::map<std::string, bool> saved;  // field -> defined; when loading, what the checkpoint lists
  std::set<std::string> visited;      // fields named on this side
};

StateVisitor::StateVisitor(torch::serialize::OutputArchive* out, torch::serialize::InputArchive* in, c10::Device device)
    : archive_out_(out), archive_in_(in), device_(device), manifest_(std::make_unique<Manifest>()) {}

StateVisitor::~StateVisitor() = default;

std::string StateVisitor::key(std::string_view name) const {
  return prefix_.empty() ? std::string(name) : prefix_ + "." + std::string(name);
}

bool StateVisitor::enter(const std::string& key, bool defined) {
  check<Error>(manifest_->visited.insert(key).second, "state field '" + key + "' is declared twice");
  if (!loading()) {
    manifest_->saved[key] = defined;
    return defined;
  }
  const auto it = manifest_->saved.find(key);
  check<IoError>(it != manifest_->saved.end(),
                 "the checkpoint has no state field '" + key + "' (written by another version of this component?)");
  return it->second;
}

void StateVisitor::operator()(std::string_view name, at::Tensor& value, Place place) {
  const std::string k = key(name);
  if (!loading()) {
    const bool defined = enter(k, value.defined());
    if (digests_) {  // fingerprinting: digested, not written
      if (!measuring_) digest(k, defined ? value : at::Tensor());
      return;
    }
    if (defined) archive_out_->write(k, value.detach().cpu());
    return;
  }
  if (!enter(k, true)) {
    value = at::Tensor();
    return;
  }
  at::Tensor read;
  archive_in_->read(k, read);
  value = place == Place::kDevice ? read.to(device_) : read;
}

void StateVisitor::operator()(std::string_view name, std::vector<at::Tensor>& values, Place place) {
  auto size = static_cast<std::int64_t>(values.size());
  (*this)(std::string(name) + ".size", size);
  if (loading()) values.assign(static_cast<size_t>(size), at::Tensor());
  for (size_t i = 0; i < values.size(); ++i) (*this)(std::string(name) + "." + std::to_string(i), values[i], place);
}

void StateVisitor::operator()(std::string_view name, std::int64_t& value) {
  at::Tensor t = loading() ? at::Tensor() : torch::tensor(value, torch::kLong);
  (*this)(name, t);
  if (loading()) value = t.item<std::int64_t>();
}

void StateVisitor::operator()(std::string_view name, int& value) {
  std::int64_t wide = value;
  (*this)(name, wide);
  value = static_cast<int>(wide);
}

void StateVisitor::operator()(std::string_view name, double& value) {
  at::Tensor t = loading() ? at::Tensor() : torch::tensor(value, torch::kDouble);
  (*this)(name, t);
  if (loading()) value = t.item<double>();
}

void StateVisitor::measurement(std::string_view name, double& value) {
  measuring_ = true;
  (*this)(name, value);
  measuring_ = false;
}

void StateVisitor::operator()(std::string_view name, bool& value) {
  std::int64_t wide = value ? 1 : 0;
  (*this)(name, wide);
  value = wide != 0;
}

void StateVisitor::operator()(std::string_view name, std::string& value) {
  const std::string k = key(name);
  enter(k, true);
  if (!loading()) {
    if (digests_)
      digest(k, value);
    else
      archive_out_->write(k, c10::IValue(value));
    return;
  }
  c10::IValue read;
  archive_in_->read(k, read);
  value = read.toStringRef();
}

void StateVisitor::operator()(std::string_view name, std::vector<std::int64_t>& values) {
  at::Tensor t = loading() ? at::Tensor() : torch::tensor(values, torch::kLong);
  (*this)(name, t);
  if (!loading()) return;
  t = t.contiguous();
  values.assign(t.data_ptr<std::int64_t>(), t.data_ptr<std::int64_t>() + t.numel());
}

void StateVisitor::operator()(std::string_view name, std::vector<double>& values) {
  at::Tensor t = loading() ? at::Tensor() : torch::tensor(values, torch::kDouble);
  (*this)(name, t);
  if (!loading()) return;
  t = t.contiguous();
  values.assign(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

void StateVisitor::operator()(std::string_view name, Stateful& nested) {
  const std::string outer = prefix_;
  prefix_ = key(name);
  nested.visit_state(*this);
  prefix_ = outer;
}

void StateVisitor::operator()(std::string_view name, torch::nn::Module& module) {
  const std::string base = std::string(name) + ".";
  torch::NoGradGuard no_grad;
  auto visit = [&](const std::string& item, at::Tensor& tensor) {
    if (!loading()) {
      (*this)(base + item, tensor);
      return;
    }
    at::Tensor read;
    (*this)(base + item, read);
    check<IoError>(read.defined() && read.sizes() == tensor.sizes(),
                   "state field '" + key(base + item) + "' does not fit the module (another architecture?)");
    tensor.copy_(read);
  };
  for (auto& item : module.named_parameters(true)) visit(item.key(), item.value());
  for (auto& item : module.named_buffers(true)) visit(item.key(), item.value());
}

namespace {
constexpr std::uint64_t kFnvOffset = 14695981039346656037ULL;
}  // namespace

void StateVisitor::digest(const std::string& key, const at::Tensor& value) {
  std::uint64_t hash = kFnvOffset;
  const bool defined = value.defined();
  fnv1a(hash, &defined, sizeof defined);
  if (defined) {
    const auto t = value.detach().cpu().contiguous();
    const auto dtype = static_cast<int>(t.scalar_type());
    fnv1a(hash, &dtype, sizeof dtype);
    for (const auto size : t.sizes()) fnv1a(hash, &size, sizeof size);
    fnv1a(hash, t.data_ptr(), t.nbytes());
  }
  digests_->emplace_back(key, hash);
}

void StateVisitor::digest(const std::string& key, const std::string& value) {
  std::uint64_t hash = kFnvOffset;
  fnv1a(hash, value.data(), value.size());
  digests_->emplace_back(key, hash);
}

void StateVisitor::finish() {
  if (!loading()) {
    nlohmann::json fields = nlohmann::json::object();
    for (const auto& [k, defined] : manifest_->saved) fields[k] = defined;
    archive_out_->write(kManifestKey, c10::IValue(fields.dump()));
    return;
  }
  for (const auto& [k, defined] : manifest_->saved)
    check<IoError>(manifest_->visited.count(k) > 0,
                   "the checkpoint holds state field '" + k + "' that this run has not (another method or version?)");
}

void StateVisitor::save(Stateful& root, torch::serialize::OutputArchive& archive) {
  StateVisitor visitor(&archive, nullptr, c10::Device(c10::kCPU));
  root.visit_state(visitor);
  visitor.finish();
}

void StateVisitor::load(Stateful& root, torch::serialize::InputArchive& archive, const c10::Device& device) {
  StateVisitor visitor(nullptr, &archive, device);
  c10::IValue text;
  check<IoError>(archive.try_read(kManifestKey, text),
                 "the checkpoint's state has no field list (written by an sscl before checkpoint format 2)");
  const auto fields = nlohmann::json::parse(text.toStringRef());
  for (auto it = fields.begin(); it != fields.end(); ++it) visitor.manifest_->saved[it.key()] = it.value().get<bool>();
  root.visit_state(visitor);
  visitor.finish();
}

std::string StateVisitor::to_bytes(Stateful& root) {
  torch::serialize::OutputArchive archive;
  save(root, archive);
  std::ostringstream bytes;
  archive.save_to(bytes);
  return bytes.str();
}

std::vector<std::pair<std::string, std::uint64_t>> StateVisitor::field_fingerprints(Stateful& root) {
  torch::serialize::OutputArchive archive;
  StateVisitor visitor(&archive, nullptr, c10::Device(c10::kCPU));
  std::vector<std::pair<std::string, std::uint64_t>> out;
  visitor.digests_ = &out;
  root.visit_state(visitor);
  return out;
}

std::uint64_t StateVisitor::fingerprint(Stateful& root) { return fingerprint(field_fingerprints(root)); }

std::uint64_t StateVisitor::fingerprint(const std::vector<std::pair<std::string, std::uint64_t>>& fields) {
  std::uint64_t hash = kFnvOffset;
  for (const auto& [key, digest] : fields) {
    fnv1a(hash, key.data(), key.size() + 1);  // with its NUL: "a" + "bc" is not "ab" + "c"
    fnv1a(hash, &digest, sizeof digest);
  }
  return hash;
}

void StateVisitor::from_bytes(Stateful& root, const std::string& bytes, const c10::Device& device) {
  torch::serialize::InputArchive archive;
  archive.load_from(bytes.data(), bytes.size());
  load(root, archive, device);
}

}  // namespace sscl
