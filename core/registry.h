// A name -> factory registry per kind of component (backbones, datasets, methods,
// hooks). Entries register themselves with one line next to their class:
//
//   SSCL_REGISTER(MethodRegistry, "sft", make_sft);
//
// The map is a function-local static, so registration order across translation
// units does not matter. Objects are linked as OBJECT libraries (cmake/SsclTargets)
// so the linker cannot drop a self-registering file.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace sscl {

template <typename Factory>
class Registry {
 public:
  explicit Registry(std::string kind) : kind_(std::move(kind)) {}

  void add(const std::string& name, Factory factory) {
    if (!entries_.emplace(name, std::move(factory)).second)
      throw RegistryError(kind_ + " '" + name + "' is registered twice");
  }

  bool contains(const std::string& name) const { return entries_.count(name) > 0; }

  const Factory& at(const std::string& name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) throw RegistryError("unknown " + kind_ + " '" + name + "'; known: " + joined_names());
    return it->second;
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& entry : entries_) out.push_back(entry.first);
    return out;  // std::map keeps them sorted
  }

  const std::string& kind() const { return kind_; }

 private:
  std::string joined_names() const {
    std::string out;
    for (const auto& name : names()) out += (out.empty() ? "" : ", ") + name;
    return out.empty() ? "(none)" : out;
  }

  std::string kind_;
  std::map<std::string, Factory> entries_;
};

// Registers at static-initialisation time.
template <typename RegistryAccessor, typename Factory>
struct Registrar {
  Registrar(const std::string& name, Factory factory) { RegistryAccessor::get().add(name, std::move(factory)); }
};

#define SSCL_REGISTRY_CONCAT_INNER(a, b) a##b
#define SSCL_REGISTRY_CONCAT(a, b) SSCL_REGISTRY_CONCAT_INNER(a, b)
// `registry` is a type with a static get() returning the Registry (see the
// accessors declared next to each interface, e.g. MethodRegistry).
#define SSCL_REGISTER(registry, name, factory)                                                                    \
  static const ::sscl::Registrar<registry, registry::Factory> SSCL_REGISTRY_CONCAT(sscl_registrar_, __COUNTER__)( \
      name, factory)

// Declares a registry accessor type: struct NAME { using Factory = ...; get(); }.
#define SSCL_DECLARE_REGISTRY(accessor, factory_type) \
  struct accessor {                                   \
    using Factory = factory_type;                     \
    static ::sscl::Registry<Factory>& get();          \
  }
#define SSCL_DEFINE_REGISTRY(accessor, kind_name)                   \
  ::sscl::Registry<accessor::Factory>& accessor::get() {            \
    static ::sscl::Registry<accessor::Factory> registry(kind_name); \
    return registry;                                                \
  }

}  // namespace sscl
