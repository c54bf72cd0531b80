// Every component the sources register is registered in a linked program (this
// fails if a layer's library or a self-registering file was dropped by the
// linker), and nothing else is: the expected names are read from the
// registration lines of the sources themselves, not listed here.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/hook_registry.h"
#include "core/method.h"
#include "core/optim.h"
#include "core/task_data.h"
#include "datasets/image_dataset.h"
#include "tests/tools/run_binary.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;
using Names = std::set<std::string>;

// The string literal that `args` (the text after a macro's opening parenthesis)
// has as its `index`-th argument, or "" when that argument is not one.
std::string literal_argument(const std::string& args, int index) {
  size_t at = 0;
  for (int i = 0; i < index; ++i) {
    at = args.find(',', at);
    if (at == std::string::npos) return "";
    ++at;
  }
  while (at < args.size() && std::isspace(static_cast<unsigned char>(args[at]))) ++at;
  if (at >= args.size() || args[at] != '"') return "";
  const size_t end = args.find('"', at + 1);
  return end == std::string::npos ? "" : args.substr(at + 1, end - at - 1);
}

// The registry accessor that is the first argument ("::sscl::MethodRegistry" -> "MethodRegistry").
std::string accessor_argument(const std::string& args) {
  std::string first = args.substr(0, args.find(','));
  first.erase(0, first.find_first_not_of(" \t\n"));
  if (first.rfind("::sscl::", 0) == 0) first.erase(0, 8);
  return first;
}

// Registry accessor -> the names registered in the sources, from
//   SSCL_REGISTER(Accessor, "name", ...), SSCL_REGISTER_OPTIONS(Accessor, "name", ...),
//   SSCL_REGISTER_OPTIONS_IN(Accessor, group, "name", ...), SSCL_REGISTER_METHOD("name", ...),
//   SSCL_REGISTER_SSCL_METHOD("name", ...) and SSCL_REGISTER_SEMI_LOSS("name", ...) (a loss and a method).
// A macro's definition names no literal, so it is not counted.
std::map<std::string, Names> names_in_sources() {
  std::map<std::string, Names> out;
  for (const char* layer : {"core", "models", "datasets", "tasks", "methods", "tools"}) {
    for (const auto& entry : fs::recursive_directory_iterator(fs::path(SSCL_SOURCE_DIR) / layer)) {
      if (entry.path().extension() != ".cpp") continue;
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      const std::string source = text.str();
      for (size_t at = source.find("SSCL_REGISTER"); at != std::string::npos;
           at = source.find("SSCL_REGISTER", at + 1)) {
        const size_t open = source.find('(', at);
        if (open == std::string::npos) break;
        const std::string macro = source.substr(at, open - at), args = source.substr(open + 1, 400);
        if (macro == "SSCL_REGISTER" || macro == "SSCL_REGISTER_OPTIONS") {
          const auto name = literal_argument(args, 1);
          if (!name.empty()) out[accessor_argument(args)].insert(name);
        } else if (macro == "SSCL_REGISTER_OPTIONS_IN") {
          const auto name = literal_argument(args, 2);
          if (!name.empty()) out[accessor_argument(args)].insert(name);
        } else if (macro == "SSCL_REGISTER_METHOD" || macro == "SSCL_REGISTER_SSCL_METHOD") {
          const auto name = literal_argument(args, 0);
          if (!name.empty()) out["MethodRegistry"].insert(name);
        } else if (macro == "SSCL_REGISTER_SEMI_LOSS") {
          const auto name = literal_argument(args, 0);
          if (!name.empty()) {
            out["MethodRegistry"].insert(name);
            out["SemiLossRegistry"].insert(name);
          }
        }
      }
    }
  }
  return out;
}

template <typename Accessor>
Names registered() {
  const auto names = Accessor::get().names();
  return Names(names.begin(), names.end());
}

TEST(Registry, EveryNameTheSourcesRegisterIsRegisteredAndNoOther) {
  const auto expected = names_in_sources();
  const std::map<std::string, Names> actual{
      {"MethodRegistry", registered<MethodRegistry>()},
      {"SemiLossRegistry", registered<SemiLossRegistry>()},
      {"BackboneRegistry", registered<BackboneRegistry>()},
      {"DatasetRegistry", registered<DatasetRegistry>()},
      {"TaskSequenceRegistry", registered<TaskSequenceRegistry>()},
      {"HookRegistry", registered<HookRegistry>()},
      {"SectionHookRegistry", registered<SectionHookRegistry>()},
      {"OptimizerRegistry", registered<OptimizerRegistry>()},
      {"LrScheduleRegistry", registered<LrScheduleRegistry>()},
  };
  for (const auto& [accessor, names] : expected) {
    ASSERT_TRUE(actual.count(accessor)) << "a registry this test does not know: " << accessor;
    EXPECT_EQ(actual.at(accessor), names) << accessor;
  }
  for (const auto& [accessor, names] : actual) EXPECT_TRUE(expected.count(accessor)) << accessor << " has no source";
  // The scan itself sees the built-ins (a broken pattern would make this vacuous).
  EXPECT_GE(expected.at("MethodRegistry").size(), 20u);
  EXPECT_TRUE(expected.at("SemiLossRegistry").count("fixmatch"));
}

TEST(Registry, EveryEntryHasASummary) {
  for (const RegistryBase* registry : registry_index())
    for (const auto& name : registry->names())
      EXPECT_FALSE(registry->info(name).summary.empty()) << registry->kind() << " " << name;
}

TEST(Registry, UnknownNameListsTheKnownOnes) {
  std::string known;
  for (const auto& name : MethodRegistry::get().names()) known += (known.empty() ? "" : ", ") + name;
  try {
    MethodRegistry::get().at("fixmach");
    FAIL();
  } catch (const RegistryError& e) {
    EXPECT_EQ(std::string(e.what()), "unknown method 'fixmach'; known: " + known);
  }
}

TEST(Registry, DuplicateNameIsRejected) {
  Registry<int> r("thing", "thing");
  r.add("a", 1);
  EXPECT_THROW(r.add("a", 2), RegistryError);
  EXPECT_EQ(r.at("a"), 1);
}

TEST(Registry, ListPrintsEveryNameAndListNamesOneKind) {
  testing::TempDir dir;
  const auto all = testing::run_train("--list", dir);
  ASSERT_EQ(all.exit_code, 0) << all.err;
  for (const RegistryBase* registry : registry_index())
    for (const auto& name : registry->names())
      EXPECT_NE(all.out.find(registry->kind() + " " + name), std::string::npos) << registry->kind() << " " << name;
  const auto continual = testing::run_train("--list-names method --group continual", dir);
  ASSERT_EQ(continual.exit_code, 0) << continual.err;
  std::string expected;
  for (const auto& name : MethodRegistry::get().names())
    if (MethodRegistry::get().info(name).group == kContinualMethods) expected += name + "\n";
  EXPECT_EQ(continual.out, expected);
  EXPECT_NE(expected.find("der\n"), std::string::npos);
  EXPECT_EQ(expected.find("fixmatch\n"), std::string::npos) << "a loss alone is not a continual method";
  const auto bad = testing::run_train("--list-names gadget", dir);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("unknown kind of component 'gadget'; known: "), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace sscl
