#include "core/plugins.h"

#include <dlfcn.h>

#include <fstream>
#include <set>

#include "core/config.h"
#include "core/error.h"
#include "core/registry.h"

namespace sscl {

namespace fs = std::filesystem;

namespace {

PluginLoad*& current_load() {
  static PluginLoad* load = nullptr;
  return load;
}

bool is_elf(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
}

// Who holds `name` of `kind` already: "built in" or "by plugin PATH".
std::string holder_of(const std::string& kind, const std::string& name) {
  for (const RegistryBase* registry : registry_index())
    if (registry->kind() == kind && registry->contains(name)) {
      const std::string& origin = registry->info(name).origin;
      return origin.empty() ? "built in" : "by plugin " + origin;
    }
  return "elsewhere";
}

PluginLoad load_one(const fs::path& path) {
  const std::string where = "plugin " + path.string();
  std::error_code ec;
  if (!fs::exists(path, ec)) throw ConfigError(where + ": no such file");
  if (!fs::is_regular_file(path, ec) || !is_elf(path)) throw ConfigError(where + ": not a shared library");
  PluginLoad load{path.string(), {}};
  current_load() = &load;
  // RTLD_GLOBAL: a second plugin may build on the first's classes.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  current_load() = nullptr;
  if (!handle) {
    const char* reason = dlerror();
    throw ConfigError(where + ": cannot be loaded: " + (reason ? reason : "unknown reason"));
  }
  for (const auto& entry : load.registered)
    if (entry.taken)
      throw ConfigError(where + ": registers " + entry.kind + " '" + entry.name + "', a name already taken (" +
                        holder_of(entry.kind, entry.name) + ")");
  if (load.registered.empty())
    throw ConfigError(where + ": registers nothing (no SSCL_REGISTER line ran; is it an sscl plugin, loaded once?)");
  return load;
}

}  // namespace

PluginLoad* PluginLoad::current() { return current_load(); }

std::vector<PluginLoad> load_plugins(const std::vector<fs::path>& paths) {
  static std::set<fs::path> loaded;  // canonical paths, for the life of the process
  std::vector<PluginLoad> out;
  for (const auto& path : paths) {
    std::error_code ec;
    const fs::path canonical = fs::weakly_canonical(path, ec);
    if (!ec && loaded.count(canonical)) continue;
    out.push_back(load_one(path));
    loaded.insert(ec ? path : canonical);
  }
  return out;
}

std::vector<fs::path> plugin_paths(Config& config, const std::vector<fs::path>& extra) {
  std::vector<fs::path> paths;
  if (config.has("plugins")) {
    const auto given = config.get<std::vector<std::string>>("plugins");
    // "PATH:LINE" of the file that set the key, or "--cfg-options ...".
    const std::string origin = config.origin("plugins");
    fs::path base = fs::current_path();
    if (origin.rfind("--cfg-options", 0) != 0 && origin.find(':') != std::string::npos)
      base = fs::absolute(fs::path(origin.substr(0, origin.rfind(':')))).parent_path();
    for (const auto& p : given) paths.push_back(fs::path(p).is_absolute() ? fs::path(p) : base / p);
  }
  for (const auto& p : extra) paths.push_back(fs::absolute(p));
  for (auto& p : paths) p = p.lexically_normal();
  if (paths.empty()) return paths;
  std::string list = "plugins=[";
  for (size_t i = 0; i < paths.size(); ++i) list += (i ? ", " : "") + options_detail::quote_string(paths[i].string());
  config.apply_override(list + "]");
  config.get<std::vector<std::string>>("plugins");  // read: not an unknown key
  return paths;
}

}  // namespace sscl
