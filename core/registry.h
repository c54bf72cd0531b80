// A name -> factory registry per kind of component (methods, semi-supervised
// losses, backbones, datasets, task sequences, hooks, optimizers, schedules).
// Entries register themselves with one line next to their class, with a one-line
// summary, and, for a component with an options struct (core/options.h), the
// factory that reads it:
//
//   SSCL_REGISTER(DatasetRegistry, "cifar10", "CIFAR-10, the python or binary files", load_cifar10);
//   SSCL_REGISTER_OPTIONS(MethodRegistry, "der", "DER: replay matching stored logits", DerOptions{},
//                         [](const DerOptions& o) { return std::make_unique<Der>(o); });
//
// The map is a function-local static, so registration order across translation
// units does not matter. Every registry lists itself in registry_index(), which
// `sscl_train --list` and `--describe` print. A plugin (core/plugins.h) registers
// into the same registries when it is loaded.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/options.h"

namespace sscl {

// What --list and --describe know of one registered name.
struct RegistryEntryInfo {
  std::string summary;
  // The component's keys with its defaults; empty for a component without options.
  std::function<std::vector<OptionDoc>()> options;
  // The plugin library that registered it; empty for a built-in.
  std::string origin;
  // A kind within the registry, e.g. "continual" or "semi-supervised" methods;
  // empty when the registry has no groups.
  std::string group;
};

class RegistryBase {
 public:
  virtual ~RegistryBase() = default;
  virtual const std::string& kind() const = 0;
  // Where a component's options live, for --describe: "method", "model", ...
  virtual const std::string& section() const = 0;
  virtual std::vector<std::string> names() const = 0;
  virtual const RegistryEntryInfo& info(const std::string& name) const = 0;
  virtual bool contains(const std::string& name) const = 0;
};

// Every registry that has been created, in the order of creation.
std::vector<const RegistryBase*>& registry_index();

namespace registry_detail {
// Called by every Registry::add. Returns false when the entry must not be added:
// a name already taken while a plugin loads, which the plugin loader reports.
bool note_registration(const std::string& kind, const std::string& name, bool taken);
// The plugin being loaded (the origin of what registers now); empty otherwise.
const std::string& loading_plugin();
}  // namespace registry_detail

template <typename Factory>
class Registry : public RegistryBase {
 public:
  Registry(std::string kind, std::string section) : kind_(std::move(kind)), section_(std::move(section)) {
    registry_index().push_back(this);
  }
  // A registry that ends before the program (a test's own) leaves the index, so
  // that nothing lists a destroyed registry. The index outlives the static ones:
  // it was constructed inside the first registry's constructor.
  ~Registry() override {
    auto& index = registry_index();
    index.erase(std::remove(index.begin(), index.end(), this), index.end());
  }
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  void add(const std::string& name, Factory factory, RegistryEntryInfo info = {}) {
    const bool taken = entries_.count(name) > 0;
    if (!registry_detail::note_registration(kind_, name, taken)) return;
    if (taken) throw RegistryError(kind_ + " '" + name + "' is registered twice");
    info.origin = registry_detail::loading_plugin();
    entries_.emplace(name, Entry{std::move(factory), std::move(info)});
  }

  bool contains(const std::string& name) const override { return entries_.count(name) > 0; }

  const Factory& at(const std::string& name) const { return find(name).factory; }
  const RegistryEntryInfo& info(const std::string& name) const override { return find(name).info; }

  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    for (const auto& entry : entries_) out.push_back(entry.first);
    return out;  // std::map keeps them sorted
  }

  const std::string& kind() const override { return kind_; }
  const std::string& section() const override { return section_; }

 private:
  struct Entry {
    Factory factory;
    RegistryEntryInfo info;
  };

  const Entry& find(const std::string& name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) throw RegistryError("unknown " + kind_ + " '" + name + "'; known: " + joined_names());
    return it->second;
  }

  std::string joined_names() const {
    std::string out;
    for (const auto& name : names()) out += (out.empty() ? "" : ", ") + name;
    return out.empty() ? "(none)" : out;
  }

  std::string kind_;
  std::string section_;
  std::map<std::string, Entry> entries_;
};

namespace registry_detail {

template <typename Factory>
struct FactoryTraits;
template <typename R, typename... Args>
struct FactoryTraits<std::function<R(const ConfigSection&, Args...)>> {
  // A factory that reads `Options` from its section (starting from `defaults`)
  // and hands them to `build` with the factory's other arguments.
  template <typename Options, typename Build>
  static std::function<R(const ConfigSection&, Args...)> reading(Options defaults, Build build) {
    return [defaults = std::move(defaults), build = std::move(build)](const ConfigSection& section, Args... args) -> R {
      return build(read_options(section, defaults), std::forward<Args>(args)...);
    };
  }
};

}  // namespace registry_detail

// Registers at static-initialisation time.
template <typename RegistryAccessor>
struct Registrar {
  using Factory = typename RegistryAccessor::Factory;
  Registrar(const std::string& name, const std::string& summary, Factory factory) {
    RegistryAccessor::get().add(name, std::move(factory), RegistryEntryInfo{summary, {}, {}, {}});
  }
  template <typename Options, typename Build>
  Registrar(const std::string& name, const std::string& summary, Options defaults, Build build,
            std::string group = {}) {
    RegistryEntryInfo info{summary, [defaults] { return describe_options(defaults); }, {}, std::move(group)};
    RegistryAccessor::get().add(name, registry_detail::FactoryTraits<Factory>::reading(defaults, std::move(build)),
                                std::move(info));
  }
};

#define SSCL_REGISTRY_CONCAT_INNER(a, b) a##b
#define SSCL_REGISTRY_CONCAT(a, b) SSCL_REGISTRY_CONCAT_INNER(a, b)
// `registry` is a type with a static get() returning the Registry (see the
// accessors declared next to each interface, e.g. MethodRegistry).
#define SSCL_REGISTER(registry, name, summary, ...)                                                          \
  static const ::sscl::Registrar<registry> SSCL_REGISTRY_CONCAT(sscl_registrar_, __COUNTER__)(name, summary, \
                                                                                              __VA_ARGS__)
// A component with an options struct: its factory reads the options (of the
// type of `defaults`, starting from its values) from the component's section and
// calls build(options, the factory's other arguments...). --describe prints them.
// The factory (or build) may hold commas: it is the rest of the arguments.
#define SSCL_REGISTER_OPTIONS(registry, name, summary, defaults, ...)                                                  \
  static const ::sscl::Registrar<registry> SSCL_REGISTRY_CONCAT(sscl_registrar_, __COUNTER__)(name, summary, defaults, \
                                                                                              __VA_ARGS__)

// The same within a group of the registry (RegistryEntryInfo::group).
#define SSCL_REGISTER_OPTIONS_IN(registry, group, name, summary, defaults, build)                                      \
  static const ::sscl::Registrar<registry> SSCL_REGISTRY_CONCAT(sscl_registrar_, __COUNTER__)(name, summary, defaults, \
                                                                                              build, group)

// Declares a registry accessor type: struct NAME { using Factory = ...; get(); }.
#define SSCL_DECLARE_REGISTRY(accessor, factory_type) \
  struct accessor {                                   \
    using Factory = factory_type;                     \
    static ::sscl::Registry<Factory>& get();          \
  }
// `kind_name` words errors ("unknown method 'x'"); `section` is the config table
// a component's options live in ("method").
#define SSCL_DEFINE_REGISTRY(accessor, kind_name, section)                   \
  ::sscl::Registry<accessor::Factory>& accessor::get() {                     \
    static ::sscl::Registry<accessor::Factory> registry(kind_name, section); \
    return registry;                                                         \
  }

}  // namespace sscl
