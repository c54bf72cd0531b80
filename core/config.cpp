#include "core/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "core/options.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;

// Dotted key -> "PATH:LINE" or "--cfg-options KEY=VALUE", for tables and values alike.
// Kept beside the values because TOML++ drops source regions when nodes are copied.
using Origins = std::map<std::string, std::string, std::less<>>;

// One parsed file (with its bases resolved) or one override, ready to merge.
struct Layer {
  toml::table table;
  Origins origins;
};

constexpr std::string_view kDelete = "_delete_";
constexpr std::string_view kBase = "_base_";

std::string join_key(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  if (key.empty()) return std::string(prefix);
  std::string out(prefix);
  out += '.';
  out += key;
  return out;
}

std::vector<std::string_view> split_key(std::string_view key) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return parts;
    start = dot + 1;
  }
}

// Keys must be addressable as dotted paths and as --cfg-options.
bool valid_segment(std::string_view segment) {
  if (segment.empty()) return false;
  return std::all_of(segment.begin(), segment.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

bool valid_key(std::string_view key) {
  auto parts = split_key(key);
  return std::all_of(parts.begin(), parts.end(), valid_segment);
}

const char* type_word(toml::node_type type) {
  switch (type) {
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
    default: return "nothing";
  }
}

std::string a_type(toml::node_type type) {
  std::string word = type_word(type);
  bool vowel = word[0] == 'a' || word[0] == 'i';
  return (vowel ? "an " : "a ") + word;
}

std::string file_origin(const std::string& path, const toml::source_region& where) {
  return path + ":" + std::to_string(where.begin.line);
}

// Records the origin of every key below `table` and validates the reserved keys.
void record_origins(const toml::table& table, const std::string& prefix,
                    const std::function<std::string(const toml::node&)>& where, Origins& out) {
  for (auto&& [name_key, node] : table) {
    std::string_view name = name_key.str();
    std::string key = join_key(prefix, name);
    if (name == kDelete) {
      if (!node.is_boolean())
        throw ConfigError(where(node) + ": '" + key + "' must be a boolean, got " + a_type(node.type()));
      continue;
    }
    if (name == kBase) {
      throw ConfigError(where(node) + ": '" + key + "': _base_ is only allowed at the top level of a file");
    }
    if (!valid_segment(name))
      throw ConfigError(where(node) + ": invalid key '" + key + "' (key names use letters, digits, '_' and '-')");
    out[key] = where(node);
    if (const toml::table* sub = node.as_table()) record_origins(*sub, key, where, out);
  }
}

bool deletes_base(const toml::table& table) {
  const toml::node* flag = table.get(kDelete);
  return flag && flag->value<bool>().value_or(false);
}

// Deep copies without `_delete_` markers or number formatting flags (hex, ...), so
// that the resolved config only holds values.
void put(toml::table& dst, std::string_view name, const toml::node& node);

toml::table clean_table(const toml::table& src) {
  toml::table out;
  for (auto&& [name, node] : src)
    if (name.str() != kDelete) put(out, name.str(), node);
  return out;
}

toml::array clean_array(const toml::array& src) {
  toml::array out;
  for (const toml::node& element : src) {
    element.visit([&](const auto& n) {
      using N = std::decay_t<decltype(n)>;
      if constexpr (std::is_same_v<N, toml::table>)
        out.push_back(clean_table(n));
      else if constexpr (std::is_same_v<N, toml::array>)
        out.push_back(clean_array(n));
      else
        out.push_back(n.get());
    });
  }
  return out;
}

void put(toml::table& dst, std::string_view name, const toml::node& node) {
  node.visit([&](const auto& n) {
    using N = std::decay_t<decltype(n)>;
    if constexpr (std::is_same_v<N, toml::table>)
      dst.insert_or_assign(name, clean_table(n));
    else if constexpr (std::is_same_v<N, toml::array>)
      dst.insert_or_assign(name, clean_array(n));
    else
      dst.insert_or_assign(name, n.get());
  });
}

void erase_subtree(Origins& origins, const std::string& key) {
  origins.erase(key);
  std::string prefix = key + ".";
  auto it = origins.lower_bound(prefix);
  while (it != origins.end() && it->first.compare(0, prefix.size(), prefix) == 0) it = origins.erase(it);
}

void copy_subtree(Origins& dst, const Origins& src, const std::string& key) {
  if (auto it = src.find(key); it != src.end()) dst[key] = it->second;
  std::string prefix = key + ".";
  for (auto it = src.lower_bound(prefix); it != src.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
    dst[it->first] = it->second;
}

// A value may become a list of values and back (data.labels_per_class = 5 in a
// base, [5, 5, 1, 1, 1] in a child): the keys that take either say so when read.
bool scalar_and_list(const toml::node& a, const toml::node& b) {
  const auto scalar = [](const toml::node& n) { return n.is_value(); };
  return (scalar(a) && b.is_array()) || (a.is_array() && scalar(b));
}

std::string lookup(const Origins& origins, const std::string& key) {
  auto it = origins.find(key);
  return it == origins.end() ? std::string() : it->second;
}

// Merges `src` over `dst`: tables deep-merge, everything else replaces, a table
// with `_delete_ = true` replaces wholesale. A value may not change type, except
// that integers and floats mix (the result is a float if either is).
void merge_into(toml::table& dst, Origins& dst_origins, const toml::table& src, const Origins& src_origins,
                const std::string& prefix) {
  for (auto&& [name_key, node] : src) {
    std::string_view name = name_key.str();
    if (name == kDelete) continue;
    std::string key = join_key(prefix, name);
    toml::node* old = dst.get(name);
    const toml::table* src_table = node.as_table();
    bool replace = !old || (src_table && deletes_base(*src_table));
    if (!replace && src_table && old->is_table()) {
      merge_into(*old->as_table(), dst_origins, *src_table, src_origins, key);
      continue;
    }
    if (!replace && old->is_floating_point() && node.is_integer()) {
      dst.insert_or_assign(name, static_cast<double>(*node.value<std::int64_t>()));
    } else if (replace || old->type() == node.type() || (old->is_integer() && node.is_floating_point()) ||
               scalar_and_list(*old, node)) {
      put(dst, name, node);
    } else {
      throw ConfigError(lookup(src_origins, key) + ": type change for '" + key + "' from " + type_word(old->type()) +
                        " to " + type_word(node.type()) + " (defined at " + lookup(dst_origins, key) + ")");
    }
    erase_subtree(dst_origins, key);
    copy_subtree(dst_origins, src_origins, key);
  }
}

void merge_layer(Layer& dst, const Layer& src) { merge_into(dst.table, dst.origins, src.table, src.origins, ""); }

toml::table parse_toml(std::string_view text, const std::string& name) {
  try {
    return toml::parse(text, std::string_view(name));
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw ConfigError(name + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) +
                      ": TOML syntax error: " + std::string(e.description()));
  }
}

// Resolves `_base_` chains; `chain_` holds the files being loaded, to catch cycles.
class Loader {
 public:
  // `named_at` is the "PATH:LINE" of the `_base_` naming `file`, empty for the top.
  Layer load_file(const fs::path& file, const std::string& named_at) {
    std::string name = file.string();
    std::error_code ec;
    if (!fs::exists(file, ec)) {
      if (named_at.empty()) throw ConfigError("config file not found: " + name);
      throw ConfigError(named_at + ": base config not found: " + name);
    }
    fs::path canonical = fs::weakly_canonical(file, ec);
    if (ec) canonical = fs::absolute(file).lexically_normal();
    for (size_t i = 0; i < chain_.size(); ++i) {
      if (chain_[i].first != canonical) continue;
      std::string cycle;
      for (size_t j = i; j < chain_.size(); ++j) cycle += chain_[j].second + " -> ";
      throw ConfigError(named_at + ": base config cycle: " + cycle + name);
    }
    std::ifstream in(file, std::ios::binary);
    if (!in || fs::is_directory(file, ec)) throw ConfigError("cannot read config file: " + name);
    std::ostringstream text;
    text << in.rdbuf();

    chain_.emplace_back(canonical, name);
    Layer layer = resolve(parse_toml(text.str(), name), name, file.parent_path());
    chain_.pop_back();
    return layer;
  }

  // Merges the bases named by `table` (relative to `dir`), then `table` on top.
  Layer resolve(toml::table table, const std::string& name, const fs::path& dir) {
    std::vector<std::string> bases;
    std::string base_origin;
    if (const toml::node* base = table.get(kBase)) {
      base_origin = file_origin(name, base->source());
      bool ok = base->is_string();
      if (ok) {
        bases.push_back(*base->value<std::string>());
      } else if (const toml::array* list = base->as_array()) {
        ok = list->is_homogeneous(toml::node_type::string) || list->empty();
        for (const toml::node& entry : *list)
          if (ok) bases.push_back(*entry.value<std::string>());
      }
      if (!ok)
        throw ConfigError(base_origin + ": _base_ must be a string or an array of strings, got " +
                          a_type(base->type()));
      table.erase(kBase);
    }

    Layer own;
    record_origins(
        table, "", [&](const toml::node& node) { return file_origin(name, node.source()); }, own.origins);
    own.table = std::move(table);

    Layer merged;
    for (const std::string& base : bases) merge_layer(merged, load_file((dir / base).lexically_normal(), base_origin));
    if (deletes_base(own.table)) merged = Layer();
    merge_layer(merged, own);
    return merged;
  }

 private:
  std::vector<std::pair<fs::path, std::string>> chain_;
};

size_t code_points(std::string_view text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// Bytes of the UTF-8 sequence that `lead` starts; 0 for a byte that cannot start one.
size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x06) return 2;
  if ((lead >> 4) == 0x0E) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 0;
}

// Whether `text` is UTF-8 as TOML requires: no overlong forms, surrogates or code
// points beyond U+10FFFF.
bool valid_utf8(std::string_view text) {
  constexpr char32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};  // by sequence length
  for (size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const size_t length = sequence_length(lead);
    if (length == 0 || i + length > text.size()) return false;
    char32_t code = length == 1 ? lead : lead & (0x7F >> length);
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    if (code < kSmallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

// Parses an override value as TOML, falling back to a string for a bare word.
// Returns a table whose only entry `v` is the value.
toml::table parse_override_value(const std::string& value, const std::string& where) {
  if (value.empty()) throw ConfigError(where + ": empty value (write KEY='\"\"' for an empty string)");
  if (value.find_first_of("\r\n") != std::string::npos) throw ConfigError(where + ": the value must be on one line");
  // A bare word is kept as a string, which to_toml() must be able to write.
  if (!valid_utf8(value)) throw ConfigError(where + ": the value is not valid UTF-8");
  bool bare_word = value.find_first_of("\"'[]{} \t\f\v") == std::string::npos;

  std::string text = "v = " + value;
  std::string problem;
  try {
    toml::table parsed = toml::parse(std::string_view(text), std::string_view(where));
    const toml::node* node = parsed.get("v");
    // A value that stops early was cut by a comment (`1#x`): not what was meant.
    std::string_view trimmed(value);
    trimmed = trimmed.substr(0, trimmed.find_last_not_of(" \t") + 1);
    bool whole = parsed.size() == 1 && node && node->source().end.column == 5 + code_points(trimmed);
    // We have no use for dates; `2024-01-01` on the command line is a name.
    bool date_like = node && (node->is_date() || node->is_time() || node->is_date_time());
    if (whole && !(bare_word && date_like)) return parsed;
    problem = "unexpected text after the value";
  } catch (const toml::parse_error& e) {
    problem = std::string(e.description());
  }
  if (!bare_word) {
    bool structured = value.find_first_of("[{") == 0;
    throw ConfigError(where + ": cannot parse the value as TOML: " + problem +
                      (structured ? "" : " (quote strings, e.g. KEY='\"some text\"')"));
  }
  toml::table out;
  out.insert("v", value);
  return out;
}

// The reserved names keep their meaning in an override: `_base_` names base files,
// which only a file can do (to_toml() would write a key that loads as one), and
// `_delete_` is a boolean flag of the table holding it.
void check_reserved_names(const std::vector<std::string_view>& parts, const toml::node& value,
                          const std::string& where) {
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == kBase) throw ConfigError(where + ": _base_ can only be set in a config file");
    bool last = i + 1 == parts.size();
    if (parts[i] == kDelete && (!last || !value.is_boolean()))
      throw ConfigError(where + ": _delete_ must be a boolean flag of a table");
  }
}

// Shortest text that reads back as the same double, and always as a float.
std::string format_float(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  std::string text(buffer, result.ptr);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04X", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string key_text(std::string_view name) { return valid_segment(name) ? std::string(name) : quote(name); }

// Our own writer rather than toml::toml_formatter, which prints 0.1 as
// 0.10000000000000001 (17 digits); this one writes the shortest exact float.
std::string inline_value(const toml::node& node) {
  std::string out;
  node.visit([&](const auto& n) {
    using N = std::decay_t<decltype(n)>;
    if constexpr (std::is_same_v<N, toml::table>) {
      out = "{";
      bool first = true;
      for (auto&& [name, child] : n) {
        out += first ? " " : ", ";
        out += key_text(name.str()) + " = " + inline_value(child);
        first = false;
      }
      out += first ? "}" : " }";
    } else if constexpr (std::is_same_v<N, toml::array>) {
      out = "[";
      for (size_t i = 0; i < n.size(); ++i) out += (i ? ", " : "") + inline_value(n[i]);
      out += "]";
    } else if constexpr (std::is_same_v<N, toml::value<std::string>>) {
      out = quote(n.get());
    } else if constexpr (std::is_same_v<N, toml::value<double>>) {
      out = format_float(n.get());
    } else if constexpr (std::is_same_v<N, toml::value<std::int64_t>>) {
      out = std::to_string(n.get());
    } else if constexpr (std::is_same_v<N, toml::value<bool>>) {
      out = n.get() ? "true" : "false";
    } else {
      std::ostringstream text;  // dates and times: TOML++ prints them in TOML syntax
      text << n.get();
      out = text.str();
    }
  });
  return out;
}

void write_table(std::string& out, const toml::table& table, const std::string& path) {
  bool has_values = std::any_of(table.begin(), table.end(), [](const auto& entry) { return !entry.second.is_table(); });
  // Parents of sub-tables are implied; an empty table needs its header to exist.
  if (!path.empty() && (has_values || table.empty())) {
    if (!out.empty()) out += "\n";
    out += "[" + path + "]\n";
  }
  for (auto&& [name, node] : table)
    if (!node.is_table()) out += key_text(name.str()) + " = " + inline_value(node) + "\n";
  for (auto&& [name, node] : table) {
    if (const toml::table* sub = node.as_table())
      write_table(out, *sub, path.empty() ? key_text(name.str()) : path + "." + key_text(name.str()));
  }
}

// A float, or an integer as the nearest float. Not node.value<double>(), which is
// empty for an integer beyond 2^53 (9007199254740993 cannot be exact).
double number_value(const toml::node& node) {
  if (const auto* integer = node.as_integer()) return static_cast<double>(integer->get());
  return node.as_floating_point()->get();
}

// The value of an element that is<T>() or, for double, an integer.
template <typename T>
T element_value(const toml::node& node) {
  if constexpr (std::is_same_v<T, double>)
    return number_value(node);
  else
    return *node.value<T>();
}

template <typename T>
std::string element_word();
template <>
std::string element_word<std::int64_t>() {
  return "integers";
}
template <>
std::string element_word<double>() {
  return "floats";
}
template <>
std::string element_word<std::string>() {
  return "strings";
}

template <typename T>
void insert_value(toml::table& table, std::string_view name, const T& value) {
  if constexpr (std::is_same_v<T, std::vector<std::int64_t>> || std::is_same_v<T, std::vector<double>> ||
                std::is_same_v<T, std::vector<std::string>>) {
    toml::array array;
    for (const auto& v : value) array.push_back(v);
    table.insert_or_assign(name, std::move(array));
  } else {
    table.insert_or_assign(name, value);
  }
}

// `extra` merged under `base` where `base` has nothing: given keys win.
void merge_absent(toml::table& base, const toml::table& extra) {
  for (auto&& [name, node] : extra) {
    toml::node* have = base.get(name.str());
    if (!have) {
      put(base, name.str(), node);
    } else if (have->is_table() && node.is_table()) {
      merge_absent(*have->as_table(), *node.as_table());
    }
  }
}

}  // namespace

struct Config::State {
  toml::table root;
  Origins origins;
  // Keys read so far; getters are const but record reads, through the pointer.
  std::set<std::string, std::less<>> used;
  // Defaults that components used for absent keys (record_default); written by
  // to_toml() beside `root`, never read back by the getters.
  toml::table defaults;
  fs::path source;

  const toml::node* find(std::string_view key) const {
    if (key.empty()) return nullptr;
    const toml::node* node = nullptr;
    const toml::table* table = &root;
    for (std::string_view part : split_key(key)) {
      if (!table) return nullptr;
      node = table->get(part);
      if (!node) return nullptr;
      table = node->as_table();
    }
    return node;
  }

  template <typename T>
  void record(std::string_view key, const T& value) {
    const std::string described = "'" + std::string(key) + "'";
    if (find(key)) return;  // given: the config's own value stands
    auto parts = split_key(key);
    toml::table* table = &defaults;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      toml::node* node = table->get(parts[i]);
      if (!node) node = &table->insert_or_assign(parts[i], toml::table{}).first->second;
      table = node->as_table();
      if (!table) return;  // a value where a table would go: nothing to record under it
    }
    if (const toml::node* old = table->get(parts.back())) {
      toml::table probe;
      insert_value(probe, "v", value);
      if (inline_value(*old) != inline_value(*probe.get("v")))
        throw Error("two declarations of " + described + " disagree on its default: " + inline_value(*old) + " and " +
                    inline_value(*probe.get("v")));
      return;
    }
    insert_value(*table, parts.back(), value);
  }

  std::string describe(std::string_view key) const {
    auto it = origins.find(key);
    std::string where = it == origins.end() ? "default" : it->second;
    return "config key '" + std::string(key) + "' (" + where + ")";
  }

  // The node for a required key, marked as read.
  const toml::node& require(std::string_view key) {
    const toml::node* node = find(key);
    if (!node) throw ConfigError("missing required config key '" + std::string(key) + "'");
    used.emplace(key);
    return *node;
  }

  [[noreturn]] void wrong_type(std::string_view key, const char* expected, const toml::node& node) const {
    throw ConfigError(describe(key) + " must be " + expected + ", got " + a_type(node.type()));
  }

  template <typename T>
  std::vector<T> read_vector(std::string_view key, bool ints_as_floats = false) {
    const toml::node& node = require(key);
    std::string expected = "an array of " + element_word<T>();
    const toml::array* array = node.as_array();
    if (!array) wrong_type(key, expected.c_str(), node);
    std::vector<T> out;
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = (*array)[i];
      bool ok = element.is<T>() || (ints_as_floats && element.is_integer());
      if (!ok)
        throw ConfigError(describe(key) + " must be " + expected + ", but element [" + std::to_string(i) + "] is " +
                          a_type(element.type()));
      out.push_back(element_value<T>(element));
    }
    return out;
  }
};

Config::Config() : state_(std::make_unique<State>()) {}
Config::~Config() = default;
Config::Config(const Config& other) : state_(std::make_unique<State>(*other.state_)) {}
Config& Config::operator=(const Config& other) {
  if (this != &other) state_ = std::make_unique<State>(*other.state_);
  return *this;
}
Config::Config(Config&& other) noexcept = default;
Config& Config::operator=(Config&& other) noexcept = default;

Config Config::load(const fs::path& file) {
  Loader loader;
  Layer layer = loader.load_file(file, "");
  Config config;
  config.state_->root = std::move(layer.table);
  config.state_->origins = std::move(layer.origins);
  config.state_->source = file;
  return config;
}

Config Config::from_string(std::string_view toml, std::string name) {
  Loader loader;
  Layer layer = loader.resolve(parse_toml(toml, name), name, fs::path());
  Config config;
  config.state_->root = std::move(layer.table);
  config.state_->origins = std::move(layer.origins);
  return config;
}

void Config::apply_override(const std::string& assignment) {
  std::string where = "--cfg-options " + assignment;
  size_t eq = assignment.find('=');
  if (eq == std::string::npos) throw ConfigError(where + ": expected KEY=VALUE");
  std::string key = assignment.substr(0, eq);
  if (key.empty() || !valid_key(key))
    throw ConfigError(where + ": invalid key '" + key + "' (a dotted path of letters, digits, '_' and '-')");
  toml::table parsed = parse_override_value(assignment.substr(eq + 1), where);
  auto parts = split_key(key);
  check_reserved_names(parts, *parsed.get("v"), where);

  // A clearer message than the merge's "type change ... to table".
  std::string path;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    path = join_key(path, parts[i]);
    const toml::node* node = state_->find(path);
    if (!node) break;
    if (!node->is_table())
      throw ConfigError(where + ": cannot set '" + key + "': '" + path + "' is " + a_type(node->type()) +
                        " (defined at " + origin(path) + "), not a table");
  }

  Layer layer;
  toml::table* table = &layer.table;
  path.clear();
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    path = join_key(path, parts[i]);
    layer.origins[path] = where;
    table = table->insert_or_assign(parts[i], toml::table{}).first->second.as_table();
  }
  const toml::node& value = *parsed.get("v");
  layer.origins[key] = where;
  if (const toml::table* inline_table = value.as_table())
    record_origins(
        *inline_table, key, [&](const toml::node&) { return where; }, layer.origins);
  put(*table, parts.back(), value);

  // Merge into copies so that a failed override leaves the config as it was.
  toml::table root = state_->root;
  Origins origins = state_->origins;
  merge_into(root, origins, layer.table, layer.origins, "");
  state_->root = std::move(root);
  state_->origins = std::move(origins);
}

void Config::apply_overrides(const std::vector<std::string>& assignments) {
  for (const std::string& assignment : assignments) apply_override(assignment);
}

bool Config::read(std::string_view key, bool*) const {
  const toml::node& node = state_->require(key);
  if (!node.is_boolean()) state_->wrong_type(key, "a boolean", node);
  return *node.value<bool>();
}

std::int64_t Config::read(std::string_view key, std::int64_t*) const {
  const toml::node& node = state_->require(key);
  if (!node.is_integer()) state_->wrong_type(key, "an integer", node);
  return *node.value<std::int64_t>();
}

int Config::read(std::string_view key, int*) const {
  std::int64_t value = read(key, static_cast<std::int64_t*>(nullptr));
  if (value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max())
    throw ConfigError(state_->describe(key) + " must be an integer between " +
                      std::to_string(std::numeric_limits<int>::min()) + " and " +
                      std::to_string(std::numeric_limits<int>::max()) + ", got " + std::to_string(value));
  return static_cast<int>(value);
}

double Config::read(std::string_view key, double*) const {
  const toml::node& node = state_->require(key);
  if (!node.is_number()) state_->wrong_type(key, "a float", node);
  return number_value(node);
}

std::string Config::read(std::string_view key, std::string*) const {
  const toml::node& node = state_->require(key);
  if (!node.is_string()) state_->wrong_type(key, "a string", node);
  return *node.value<std::string>();
}

std::vector<std::int64_t> Config::read(std::string_view key, std::vector<std::int64_t>*) const {
  return state_->read_vector<std::int64_t>(key);
}

std::vector<double> Config::read(std::string_view key, std::vector<double>*) const {
  return state_->read_vector<double>(key, /*ints_as_floats=*/true);
}

std::vector<std::string> Config::read(std::string_view key, std::vector<std::string>*) const {
  return state_->read_vector<std::string>(key);
}

std::string Config::get_or(std::string_view key, const char* fallback) const {
  return get_or<std::string>(key, fallback);
}

std::string Config::get_choice(std::string_view key, std::string fallback,
                               const std::vector<std::string>& allowed) const {
  std::string value = get_or<std::string>(key, std::move(fallback));
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return value;
  std::string choices;
  for (const std::string& choice : allowed) choices += (choices.empty() ? "" : ", ") + choice;
  throw ConfigError(state_->describe(key) + " must be one of: " + choices + "; got '" + value + "'");
}

bool Config::has(std::string_view key) const { return state_->find(key) != nullptr; }

bool Config::is_array(std::string_view key) const {
  const toml::node* node = state_->find(key);
  return node && node->is_array();
}

std::string Config::origin(std::string_view key) const {
  auto it = state_->origins.find(key);
  return it == state_->origins.end() ? std::string() : it->second;
}

void Config::fail(std::string_view key, const std::string& message) const {
  throw ConfigError(state_->describe(key) + ": " + message);
}

std::vector<std::string> Config::child_keys(std::string_view table_key) const {
  const toml::node* node = table_key.empty() ? &state_->root : state_->find(table_key);
  std::vector<std::string> keys;
  if (const toml::table* table = node ? node->as_table() : nullptr)
    for (auto&& [name, child] : *table) keys.emplace_back(name.str());
  std::sort(keys.begin(), keys.end());
  return keys;
}

ConfigSection Config::section(std::string_view prefix) const { return ConfigSection(*this, std::string(prefix)); }

void Config::ensure_all_used() const {
  std::string unknown;
  std::function<void(const toml::table&, const std::string&)> visit = [&](const toml::table& table,
                                                                          const std::string& prefix) {
    for (auto&& [name, node] : table) {
      std::string key = join_key(prefix, name.str());
      if (const toml::table* sub = node.as_table()) {
        visit(*sub, key);
      } else if (!state_->used.count(key)) {
        if (!unknown.empty()) unknown += "; ";
        unknown += "unknown config key '" + key + "' (from " + origin(key) + ")";
      }
    }
  };
  visit(state_->root, "");
  if (!unknown.empty()) throw ConfigError(unknown);
}

void Config::record_default(std::string_view key, bool value) const { state_->record(key, value); }
void Config::record_default(std::string_view key, std::int64_t value) const { state_->record(key, value); }
void Config::record_default(std::string_view key, double value) const { state_->record(key, value); }
void Config::record_default(std::string_view key, const std::string& value) const { state_->record(key, value); }
void Config::record_default(std::string_view key, const std::vector<std::int64_t>& value) const {
  state_->record(key, value);
}
void Config::record_default(std::string_view key, const std::vector<double>& value) const {
  state_->record(key, value);
}
void Config::record_default(std::string_view key, const std::vector<std::string>& value) const {
  state_->record(key, value);
}

std::string Config::to_toml() const {
  toml::table resolved = state_->root;
  merge_absent(resolved, state_->defaults);
  std::string out;
  write_table(out, resolved, "");
  return out;
}

namespace options_detail {
std::string format_double(double value) { return format_float(value); }
std::string quote_string(const std::string& text) { return quote(text); }
std::string format_number(double value) {
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}
std::string rule_of(const std::string& message) {
  const std::string word = "must be ";
  const size_t at = message.find(word);
  return at == std::string::npos ? message : message.substr(0, at) + message.substr(at + word.size());
}
}  // namespace options_detail

std::string Config::fingerprint() const {
  std::uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : to_toml()) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

const fs::path& Config::source() const { return state_->source; }

ConfigSection::ConfigSection(const Config& config, std::string prefix) : config_(&config), prefix_(std::move(prefix)) {}

std::string ConfigSection::full_key(std::string_view key) const { return join_key(prefix_, key); }

std::string ConfigSection::get_or(std::string_view key, const char* fallback) const {
  return config_->get_or(full_key(key), fallback);
}

std::string ConfigSection::get_choice(std::string_view key, std::string fallback,
                                      const std::vector<std::string>& allowed) const {
  return config_->get_choice(full_key(key), std::move(fallback), allowed);
}

bool ConfigSection::has(std::string_view key) const { return config_->has(full_key(key)); }
bool ConfigSection::is_array(std::string_view key) const { return config_->is_array(full_key(key)); }

std::string ConfigSection::origin(std::string_view key) const { return config_->origin(full_key(key)); }

void ConfigSection::fail(std::string_view key, const std::string& message) const {
  config_->fail(full_key(key), message);
}

std::vector<std::string> ConfigSection::child_keys(std::string_view key) const {
  return config_->child_keys(full_key(key));
}

ConfigSection ConfigSection::section(std::string_view key) const { return ConfigSection(*config_, full_key(key)); }

}  // namespace sscl
