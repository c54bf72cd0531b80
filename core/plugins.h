// Components built outside this repository. A plugin is a shared library, built
// against the installed sscl package (find_package(sscl)), whose files register
// methods, semi-supervised losses, hooks, backbones, datasets or anything else
// with the usual SSCL_REGISTER lines; loading it runs those lines. A config names
// plugins with `plugins = ["path/libmine.so"]` (relative to the file that sets the
// key) and the command line with `--plugin PATH` (what mmengine's custom_imports
// gives Python users). See docs/extending.md.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace sscl {

class Config;

// One name a plugin registered.
struct PluginEntry {
  std::string kind;  // "method", "backbone", ...
  std::string name;
  bool taken = false;  // the name was registered already (refused)
};

// The plugin being loaded, while its registrations run (core/registry.cpp).
struct PluginLoad {
  std::string path;
  std::vector<PluginEntry> registered;
  static PluginLoad* current();
};

// Loads each library once (a path given twice, or already loaded, is skipped) and
// returns what each registered. ConfigError, one line naming the file (and the
// name), for a path that does not exist, a file that is not a shared library, a
// library that registers nothing and one that registers a name already taken.
std::vector<PluginLoad> load_plugins(const std::vector<std::filesystem::path>& paths);

// The config's `plugins` with `extra` (--plugin) appended, as absolute paths: a
// config's entries relative to the file that set the key, an override's and
// `extra` relative to the working directory. The config's key is rewritten to
// the absolute list, so that the run directory's config.toml loads them again.
std::vector<std::filesystem::path> plugin_paths(Config& config, const std::vector<std::filesystem::path>& extra);

}  // namespace sscl
