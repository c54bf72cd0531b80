// State declared once. A component that holds what a resumed run needs (a replay
// buffer, importances, a teacher, counters) names each field once, in
// visit_state(); the same function saves and loads, field by field and by name
// (flashlight's FL_SAVE_LOAD, without the macro):
//
//   void visit_state(StateVisitor& s) override {
//     Er::visit_state(s);                      // the parent's fields first
//     s("seen_classes", seen_, Place::kDevice);
//     s("checks", checks_);
//   }
//
// A checkpoint stores every field under its dotted name with a manifest of the
// names; loading a checkpoint that lacks a field, or holds one this run has not,
// is an IoError naming the field (no field is read by position).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace torch::nn {
class Module;
}  // namespace torch::nn
namespace torch::serialize {
class OutputArchive;
class InputArchive;
}  // namespace torch::serialize

namespace sscl {

class StateVisitor;

class Stateful {
 public:
  virtual ~Stateful() = default;
  // Names every field a resumed run needs; called once to save, once to load.
  virtual void visit_state(StateVisitor&) {}
};

// Where a loaded tensor goes: the CPU (stores of images, counts) or the run's
// device (tensors the maths uses on it). Tensors are saved from wherever they are.
enum class Place { kCpu, kDevice };

class StateVisitor {
 public:
  ~StateVisitor();
  StateVisitor(const StateVisitor&) = delete;
  StateVisitor& operator=(const StateVisitor&) = delete;

  bool loading() const { return archive_in_ != nullptr; }
  // The run's device (Place::kDevice).
  const c10::Device& device() const { return device_; }

  // A tensor; an undefined one is recorded as such and loads as undefined.
  void operator()(std::string_view name, at::Tensor& value, Place place = Place::kCpu);
  void operator()(std::string_view name, std::vector<at::Tensor>& values, Place place = Place::kCpu);
  void operator()(std::string_view name, std::int64_t& value);
  void operator()(std::string_view name, int& value);
  void operator()(std::string_view name, double& value);
  // A figure this process measured (a wall time): saved and loaded as a double,
  // but left out of fingerprint(), since ranks measure different times.
  void measurement(std::string_view name, double& value);
  void operator()(std::string_view name, bool& value);
  void operator()(std::string_view name, std::string& value);
  void operator()(std::string_view name, std::vector<std::int64_t>& values);
  void operator()(std::string_view name, std::vector<double>& values);
  // The fields of a nested component under `name.`.
  void operator()(std::string_view name, Stateful& nested);
  // The parameters and buffers of a module that exists on both sides (the same
  // architecture); loaded into it in place.
  void operator()(std::string_view name, torch::nn::Module& module);
  // A module that may not exist yet (a teacher before the first task end): saved
  // when `holder` holds one; on load, built by `make` when the checkpoint has one
  // and reset to empty when it has none.
  template <typename Holder, typename Make>
  void optional_module(std::string_view name, Holder& holder, Make make) {
    bool present = static_cast<bool>(holder);
    (*this)(std::string(name) + ".present", present);
    if (loading()) holder = present ? make() : Holder(nullptr);
    if (present) (*this)(name, static_cast<torch::nn::Module&>(*holder));
  }

  // Saves `root`'s fields into `archive`; their names and a manifest.
  static void save(Stateful& root, torch::serialize::OutputArchive& archive);
  // Loads what save() wrote into `root`; IoError naming a missing or extra field.
  static void load(Stateful& root, torch::serialize::InputArchive& archive, const c10::Device& device);
  // The same through an archive's bytes (what a checkpoint file holds).
  static std::string to_bytes(Stateful& root);
  static void from_bytes(Stateful& root, const std::string& bytes, const c10::Device& device);
  // A 64-bit FNV-1a digest of each field save() writes (its name, dtype, shape
  // and bytes), in declaration order, measurements left out: equal digests mean
  // equal state, which is how a distributed run checks its ranks agree (the
  // archive's bytes carry zip times, so they cannot serve).
  static std::vector<std::pair<std::string, std::uint64_t>> field_fingerprints(Stateful& root);
  // The digest of all of them.
  static std::uint64_t fingerprint(Stateful& root);
  static std::uint64_t fingerprint(const std::vector<std::pair<std::string, std::uint64_t>>& fields);

 private:
  struct Manifest;
  StateVisitor(torch::serialize::OutputArchive* out, torch::serialize::InputArchive* in, c10::Device device);
  std::string key(std::string_view name) const;
  // Marks `key` as a field of this side and says whether the saved side had it defined.
  bool enter(const std::string& key, bool defined);
  void finish();
  // Mixes a saved field into digest_ when fingerprinting.
  void digest(const std::string& key, const at::Tensor& value);
  void digest(const std::string& key, const std::string& value);

  torch::serialize::OutputArchive* archive_out_;
  torch::serialize::InputArchive* archive_in_;
  c10::Device device_;
  std::string prefix_;
  std::unique_ptr<Manifest> manifest_;
  std::vector<std::pair<std::string, std::uint64_t>>* digests_ = nullptr;
  bool measuring_ = false;  // inside measurement(): not digested
};

}  // namespace sscl
