// The run configuration: TOML files with `_base_` inheritance, command-line
// overrides, typed getters that remember which keys were read, and provenance
// (file:line or the override) for every key so errors can say where a value came from.
//
//   Config cfg = Config::load("configs/fixmatch_cifar10.toml");
//   cfg.apply_overrides({"optimizer.lr=0.01", "method.name=fixmatch"});
//   double lr = cfg.section("optimizer").get_or<double>("lr", 0.1);
//   ...every component reads its options...
//   cfg.ensure_all_used();  // an unread key is a typo or a stale option
//
// TOML++ stays out of this header (pimpl) so that including it is cheap.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sscl {

class ConfigSection;

namespace detail {
template <typename T>
inline constexpr bool is_config_type_v =
    std::is_same_v<T, bool> || std::is_same_v<T, std::int64_t> || std::is_same_v<T, int> || std::is_same_v<T, double> ||
    std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<std::int64_t>> ||
    std::is_same_v<T, std::vector<double>> || std::is_same_v<T, std::vector<std::string>>;
}  // namespace detail

class Config {
 public:
  // An empty config (no keys, no source).
  Config();
  ~Config();
  Config(const Config& other);
  Config& operator=(const Config& other);
  // A moved-from Config may only be assigned to or destroyed.
  Config(Config&& other) noexcept;
  Config& operator=(Config&& other) noexcept;

  // Parses `file` and its `_base_` files (relative to the file naming them).
  static Config load(const std::filesystem::path& file);
  // For tests and embedded defaults; `name` stands in for the file name in origins,
  // and `_base_` paths are relative to the current directory.
  static Config from_string(std::string_view toml, std::string name);

  // `a.b.c=value`, value parsed as TOML (a bare word such as `cuda:0` is a string).
  void apply_override(const std::string& assignment);
  void apply_overrides(const std::vector<std::string>& assignments);

  // Typed reads mark the key as used. Supported T: bool, int64_t, int, double,
  // std::string and std::vector of int64_t, double or std::string. A double also
  // accepts an integer value.
  template <typename T>
  T get(std::string_view key) const {
    static_assert(detail::is_config_type_v<T>, "unsupported config value type");
    return read(key, static_cast<T*>(nullptr));
  }
  template <typename T>
  T get_or(std::string_view key, T fallback) const {
    return has(key) ? get<T>(key) : fallback;
  }
  // So that get_or("name", "x") is a std::string rather than a const char*.
  std::string get_or(std::string_view key, const char* fallback) const;
  // A string that must be one of `allowed`.
  std::string get_choice(std::string_view key, std::string fallback, const std::vector<std::string>& allowed) const;

  // Whether the key exists (a table or a value); does not mark it used.
  bool has(std::string_view key) const;
  // Whether the key holds an array (for keys that take a value or a list).
  bool is_array(std::string_view key) const;
  // "PATH:LINE" or "--cfg-options KEY=VALUE"; empty for an absent key.
  std::string origin(std::string_view key) const;
  // Throws ConfigError "config key 'KEY' (ORIGIN): MESSAGE", for checks done by callers.
  [[noreturn]] void fail(std::string_view key, const std::string& message) const;
  // Immediate children of a table, sorted; empty if absent. "" is the root.
  std::vector<std::string> child_keys(std::string_view table_key) const;
  // A view relative to `prefix`; this Config must outlive it.
  ConfigSection section(std::string_view prefix) const;

  // Records the value a component used for an absent key (its declared default,
  // core/options.h), so that to_toml() writes the resolved config: every key that
  // took effect. Does not make has() true. Recording a different value for a key
  // already recorded is a logic error (two declarations of one key disagree).
  void record_default(std::string_view key, bool value) const;
  void record_default(std::string_view key, std::int64_t value) const;
  void record_default(std::string_view key, double value) const;
  void record_default(std::string_view key, const std::string& value) const;
  void record_default(std::string_view key, const std::vector<std::int64_t>& value) const;
  void record_default(std::string_view key, const std::vector<double>& value) const;
  void record_default(std::string_view key, const std::vector<std::string>& value) const;

  // Throws ConfigError naming every value that exists but was never read.
  void ensure_all_used() const;

  // The resolved config as TOML: the given keys and the recorded defaults;
  // loading it again gives the same values.
  std::string to_toml() const;
  // 16 hex digits: FNV-1a 64 of to_toml().
  std::string fingerprint() const;
  // The top file given to load(); empty for from_string().
  const std::filesystem::path& source() const;

 private:
  struct State;

  bool read(std::string_view key, bool*) const;
  std::int64_t read(std::string_view key, std::int64_t*) const;
  int read(std::string_view key, int*) const;
  double read(std::string_view key, double*) const;
  std::string read(std::string_view key, std::string*) const;
  std::vector<std::int64_t> read(std::string_view key, std::vector<std::int64_t>*) const;
  std::vector<double> read(std::string_view key, std::vector<double>*) const;
  std::vector<std::string> read(std::string_view key, std::vector<std::string>*) const;

  std::unique_ptr<State> state_;
};

// A lightweight view of a Config under a dotted prefix: section("optimizer")
// .get<double>("lr") reads `optimizer.lr`. Copyable; does not own the Config.
class ConfigSection {
 public:
  ConfigSection(const Config& config, std::string prefix);

  template <typename T>
  T get(std::string_view key) const {
    return config_->get<T>(full_key(key));
  }
  template <typename T>
  T get_or(std::string_view key, T fallback) const {
    return config_->get_or<T>(full_key(key), std::move(fallback));
  }
  std::string get_or(std::string_view key, const char* fallback) const;
  std::string get_choice(std::string_view key, std::string fallback, const std::vector<std::string>& allowed) const;
  bool has(std::string_view key) const;
  bool is_array(std::string_view key) const;
  std::string origin(std::string_view key) const;
  [[noreturn]] void fail(std::string_view key, const std::string& message) const;
  // Immediate children of this section (or of a table below it), sorted.
  std::vector<std::string> child_keys(std::string_view key = {}) const;
  ConfigSection section(std::string_view key) const;

  // The dotted key that `key` names in the whole config.
  std::string full_key(std::string_view key) const;
  const std::string& prefix() const { return prefix_; }
  const Config& config() const { return *config_; }

 private:
  const Config* config_;
  std::string prefix_;
};

}  // namespace sscl
