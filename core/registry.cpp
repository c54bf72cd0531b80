#include "core/registry.h"

#include "core/plugins.h"

namespace sscl {

std::vector<const RegistryBase*>& registry_index() {
  static std::vector<const RegistryBase*> index;
  return index;
}

namespace registry_detail {

bool note_registration(const std::string& kind, const std::string& name, bool taken) {
  PluginLoad* load = PluginLoad::current();
  if (!load) return true;
  load->registered.push_back({kind, name, taken});
  return !taken;
}

const std::string& loading_plugin() {
  static const std::string none;
  const PluginLoad* load = PluginLoad::current();
  return load ? load->path : none;
}

}  // namespace registry_detail
}  // namespace sscl
