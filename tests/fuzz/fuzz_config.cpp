// Fuzzes the config loader: a bundle (fuzz_files.h) whose lead is main.toml, with
// more TOML files for `_base_` to name and an entry `overrides` holding one
// KEY=VALUE per line. Beyond "no crash", it checks the loader's promises:
//   - a rejected override leaves the config as it was;
//   - every key has an origin, and once every key is read nothing is unknown;
//   - to_toml() loads back to the same TOML and fingerprint.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "tests/fuzz/fuzz_files.h"

namespace {

using sscl::Config;
using sscl::ConfigError;

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "config fuzz: broken promise: %s\n", what.c_str());
  std::abort();
}

std::vector<std::string> lines_of(std::string_view text, size_t limit) {
  std::vector<std::string> lines;
  while (!text.empty() && lines.size() < limit) {
    const size_t end = std::min(text.find('\n'), text.size());
    lines.emplace_back(text.substr(0, end));
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return lines;
}

template <typename T>
void try_read(const Config& config, const std::string& key) {
  try {
    (void)config.get<T>(key);
  } catch (const ConfigError&) {
    // a value of another type
  }
}

// Reads every key below `table` with every getter, through sections too.
void read_all(const Config& config, const std::string& table) {
  for (const std::string& child : config.child_keys(table)) {
    const std::string key = table.empty() ? child : table + "." + child;
    if (!config.has(key) || !config.section(table).has(child)) broken("child '" + key + "' is not there");
    if (config.origin(key).empty()) broken("key '" + key + "' has no origin");
    try_read<bool>(config, key);
    try_read<std::int64_t>(config, key);
    try_read<int>(config, key);
    try_read<double>(config, key);
    try_read<std::string>(config, key);
    try_read<std::vector<std::int64_t>>(config, key);
    try_read<std::vector<double>>(config, key);
    try_read<std::vector<std::string>>(config, key);
    try {
      (void)config.section(table).get_choice(child, "fallback", {"fallback", "other"});
    } catch (const ConfigError&) {
      // not a string, or not one of the choices
    }
    read_all(config, key);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const sscl::fuzz::ScratchDir dir;
  const auto entries = sscl::fuzz::split_bundle(sscl::fuzz::as_text(data, size), "main.toml");
  std::vector<std::string> overrides;
  std::vector<sscl::fuzz::BundleEntry> files;
  for (const auto& entry : entries) {
    if (entry.name == "overrides")
      overrides = lines_of(entry.content, 16);
    else
      files.push_back(entry);
  }
  dir.write(files);

  Config config;
  try {
    config = Config::load(dir.path() / "main.toml");
  } catch (const sscl::Error&) {
    return 0;
  }
  for (const std::string& assignment : overrides) {
    const std::string before = config.to_toml();
    try {
      config.apply_override(assignment);
    } catch (const ConfigError&) {
      if (config.to_toml() != before) broken("rejected override '" + assignment + "' changed the config");
    }
  }

  read_all(config, "");
  try {
    config.ensure_all_used();
  } catch (const ConfigError& e) {
    broken(std::string("every key was read, yet: ") + e.what());
  }

  const std::string toml = config.to_toml();
  try {
    const Config again = Config::from_string(toml, "to_toml");
    if (again.to_toml() != toml) broken("to_toml() reads back as\n" + again.to_toml() + "\ninstead of\n" + toml);
    if (again.fingerprint() != config.fingerprint()) broken("fingerprint changed on reload");
  } catch (const ConfigError& e) {
    broken(std::string("to_toml() does not load: ") + e.what() + "\n" + toml);
  }
  return 0;
}
