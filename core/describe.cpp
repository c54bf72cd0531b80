#include "core/describe.h"

#include <algorithm>
#include <functional>
#include <map>
#include <vector>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/evaluator.h"
#include "core/hook_registry.h"
#include "core/optim.h"
#include "core/registry.h"
#include "core/run_builder.h"

namespace sscl {

namespace {

// A table of keys the run builder reads itself.
struct SectionDoc {
  std::string section;  // "" for the top level
  std::string summary;
  std::function<std::vector<OptionDoc>()> keys;
};

std::vector<SectionDoc>& tool_sections() {
  static std::vector<SectionDoc> sections;
  return sections;
}

std::vector<std::pair<std::string, std::function<void(const ConfigSection&)>>>& tool_section_checks() {
  static std::vector<std::pair<std::string, std::function<void(const ConfigSection&)>>> checks;
  return checks;
}

std::vector<SectionDoc> run_sections() {
  std::vector<SectionDoc> sections{
      {"", "top-level keys",
       [] {
         return std::vector<OptionDoc>{
             {"name", "string", "(the config file's name)", "the run's name: work_dirs/<name>/<timestamp>", ""},
             {"plugins", "[string]", "[]",
              "shared libraries to load first, relative to the file that sets the key (docs/extending.md)", ""}};
       }},
      {"train", "the run: seed, device, threads, length", [] { return describe_options<TrainOptions>(); }},
      {"data", "the task sequence and the scenario; the sequence's own keys are listed with it",
       [] { return describe_options<DataSelection>(); }},
      {"model", "the classifier; the backbone's own keys are listed with it",
       [] { return describe_options<ModelSelection>(); }},
      {"method", "the method; its own keys are listed with it, a composed loss's go in [method.<loss>]",
       [] { return describe_options<MethodSelection>(); }},
      {"optimizer", "the optimizer; its own keys are listed with it",
       [] { return describe_options<OptimizerSelection>(); }},
      {"lr_schedule", "the learning-rate schedule; its own keys are listed with it",
       [] { return describe_options<LrScheduleSelection>(); }},
      {"eval", "evaluation after each task", [] { return describe_options<EvalOptions>(); }},
      {"checkpoint", "checkpoints and resume", [] { return describe_options<CheckpointOptions>(); }},
      {"log", "logging and extra hooks",
       [] {
         auto keys = describe_options<LogOptions>();
         for (auto& doc : describe_options<LogIntervalOptions>()) keys.push_back(std::move(doc));
         return keys;
       }},
  };
  for (const auto& section : tool_sections()) sections.push_back(section);
  return sections;
}

// The registries in a fixed order (their creation order depends on the link).
std::vector<const RegistryBase*> sorted_registries() {
  static const std::vector<std::string> order{"task sequence",
                                              "dataset",
                                              "backbone",
                                              "method",
                                              "semi-supervised loss",
                                              "optimizer",
                                              "learning-rate schedule",
                                              "hook",
                                              "hook of its own table"};
  auto rank = [](const RegistryBase* r) {
    const auto it = std::find(order.begin(), order.end(), r->kind());
    return std::make_pair(it - order.begin(), r->kind());
  };
  auto registries = registry_index();
  std::sort(registries.begin(), registries.end(),
            [&](const RegistryBase* a, const RegistryBase* b) { return rank(a) < rank(b); });
  return registries;
}

std::string section_of(const RegistryBase& registry, const std::string& name) {
  std::string section = registry.section();
  for (const std::string placeholder : {"<loss>", "<name>"}) {
    const auto at = section.find(placeholder);
    if (at != std::string::npos) section.replace(at, placeholder.size(), name);
  }
  return section;
}

std::string padded(const std::string& text, size_t width) {
  return text.size() >= width ? text + "  " : text + std::string(width - text.size(), ' ');
}

std::string markdown_cell(std::string text) {
  for (size_t at = text.find('|'); at != std::string::npos; at = text.find('|', at + 2)) text.replace(at, 1, "\\|");
  return text;
}

void print_keys(std::ostream& out, DescribeFormat format, const std::vector<OptionDoc>& keys) {
  if (format == DescribeFormat::kMarkdown) {
    if (keys.empty()) {
      out << "No keys.\n\n";
      return;
    }
    out << "| key | type | default | rule | description |\n|---|---|---|---|---|\n";
    for (const auto& k : keys)
      out << "| `" << k.key << "` | " << markdown_cell(k.type) << " | `" << markdown_cell(k.default_value) << "` | "
          << markdown_cell(k.rule) << " | " << markdown_cell(k.doc) << " |\n";
    out << "\n";
    return;
  }
  if (keys.empty()) out << "  (no keys)\n";
  for (const auto& k : keys) {
    std::string kind = k.type + (k.rule.empty() ? "" : ", " + k.rule);
    out << "  " << padded(k.key + " = " + k.default_value, 38) << padded(kind, 26) << k.doc << "\n";
  }
}

void print_section(std::ostream& out, DescribeFormat format, const SectionDoc& doc) {
  const std::string title = doc.section.empty() ? "top level" : "[" + doc.section + "]";
  if (format == DescribeFormat::kMarkdown)
    out << "### " << title << "\n\n" << doc.summary << ".\n\n";
  else
    out << title << "  " << doc.summary << "\n";
  print_keys(out, format, doc.keys());
}

void print_component(std::ostream& out, DescribeFormat format, const RegistryBase& registry, const std::string& name) {
  const RegistryEntryInfo& info = registry.info(name);
  const std::string where = "[" + section_of(registry, name) + "]";
  const std::string group = info.group.empty() ? "" : " (" + info.group + ")";
  const std::string origin = info.origin.empty() ? "" : " (plugin " + info.origin + ")";
  if (format == DescribeFormat::kMarkdown) {
    out << "### " << registry.kind() << " `" << name << "`" << group << origin << "\n\n"
        << info.summary << (info.summary.empty() ? "" : ". ") << "Keys in `" << where << "`"
        << (registry.kind() == "semi-supervised loss" ? " when composed, in `[method]` alone" : "") << ".\n\n";
  } else {
    out << registry.kind() << " " << name << group << origin << "  " << where << "  " << info.summary << "\n";
  }
  if (info.options)
    print_keys(out, format, info.options());
  else if (format == DescribeFormat::kMarkdown)
    out << "No keys of its own.\n\n";
  else
    out << "  (no keys of its own)\n";
}

}  // namespace

ToolSectionDoc::ToolSectionDoc(std::string section, std::string summary, std::function<std::vector<OptionDoc>()> keys,
                               std::function<void(const ConfigSection&)> check) {
  tool_sections().push_back({std::move(section), std::move(summary), std::move(keys)});
  tool_section_checks().emplace_back(tool_sections().back().section, std::move(check));
}

void check_tool_sections(const Config& config) {
  for (const auto& [section, check] : tool_section_checks())
    if (config.has(section)) check(config.section(section));
}

void list_components(std::ostream& out) {
  for (const RegistryBase* registry : sorted_registries())
    for (const auto& name : registry->names()) {
      const auto& info = registry->info(name);
      out << registry->kind() << " " << name << (info.group.empty() ? "" : " (" + info.group + ")") << ": "
          << info.summary << (info.origin.empty() ? "" : " [plugin " + info.origin + "]") << "\n";
    }
}

void list_names(std::ostream& out, const std::string& kind, const std::string& group) {
  std::string kinds;
  for (const RegistryBase* registry : sorted_registries()) {
    kinds += (kinds.empty() ? "" : ", ") + registry->kind();
    if (registry->kind() != kind) continue;
    for (const auto& name : registry->names())
      if (group.empty() || registry->info(name).group == group) out << name << "\n";
    return;
  }
  throw RegistryError("unknown kind of component '" + kind + "'; known: " + kinds);
}

void describe_components(std::ostream& out, DescribeFormat format, const std::string& name) {
  bool found = false;
  if (format == DescribeFormat::kMarkdown && name.empty()) out << "## the run's own sections\n\n";
  for (const auto& section : run_sections()) {
    if (!name.empty() && section.section != name) continue;
    print_section(out, format, section);
    found = true;
  }
  std::string last_kind;
  for (const RegistryBase* registry : sorted_registries()) {
    for (const auto& entry : registry->names()) {
      if (!name.empty() && entry != name) continue;
      if (format == DescribeFormat::kMarkdown && name.empty() && registry->kind() != last_kind)
        out << "## " << registry->kind() << " (" << registry->names().size() << ")\n\n";
      last_kind = registry->kind();
      print_component(out, format, *registry, entry);
      found = true;
    }
  }
  if (found) return;
  std::string known;
  for (const auto& section : run_sections())
    if (!section.section.empty()) known += (known.empty() ? "" : ", ") + section.section;
  for (const RegistryBase* registry : sorted_registries())
    for (const auto& entry : registry->names()) known += ", " + entry;
  throw RegistryError("nothing is called '" + name + "'; known: " + known);
}

}  // namespace sscl
