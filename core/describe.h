// What `sscl_train --list` and `--describe [NAME]` print: every registered
// component and every config key, from the declarations themselves
// (core/options.h, core/registry.h), so the documentation of a key cannot drift
// from the code that reads it. docs/keys.md is this output in Markdown.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "core/options.h"

namespace sscl {

enum class DescribeFormat { kText, kMarkdown };

// Every registry's names with their summaries, a line each:
// "method der (continual): DER: ...". Plugins' entries name their library.
void list_components(std::ostream& out);
// The names of one kind, one per line ("method", "backbone", ...); with `group`
// only that group ("continual"). Throws RegistryError for an unknown kind.
void list_names(std::ostream& out, const std::string& kind, const std::string& group = "");

// The run's own sections ([train], [data], ...) and every registered component
// with its keys, type, default, rule and doc. With `name`, only the sections and
// components of that name (a component name such as "der", or a section such as
// "train"); RegistryError naming the known ones when there is none.
void describe_components(std::ostream& out, DescribeFormat format, const std::string& name = "");

// A config section that a tool above core reads (tools/pretrain's [pretrain]):
// described after the run's own sections, and checked by every run that has it
// (`check` reads its keys: a bad value or an unknown key is an error there too).
// A static object in the file that reads the section registers it.
struct ToolSectionDoc {
  ToolSectionDoc(std::string section, std::string summary, std::function<std::vector<OptionDoc>()> keys,
                 std::function<void(const ConfigSection&)> check);
};

// Runs the check of every registered tool section `config` has
// (RunBuilder::finish, before the unknown-key check).
void check_tool_sections(const Config& config);

}  // namespace sscl
