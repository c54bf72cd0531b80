// Options declared once. Every component's options struct lists its keys in one
// static `declare` function (key, field, one-line doc, checks), as LibTorch's
// TORCH_ARG structs declare their fields once; that list reads the config (typed,
// checked, every read key marked used so that an unknown key stays an error),
// records the effective value of every key in the resolved config.toml, and prints
// `sscl_train --describe`:
//
//   struct DerOptions {
//     ReplayOptions replay;
//     double alpha = 0.3;
//     static void declare(OptionSpec<DerOptions>& o) {
//       o.include(&DerOptions::replay);
//       o.key("alpha", &DerOptions::alpha, "weight of the logit-matching term").min(0);
//     }
//   };
//   DerOptions o = read_options(section, DerOptions{});   // defaults from the object
//   std::vector<OptionDoc> keys = describe_options(DerOptions{});
//
// Supported fields: bool, int, int64_t, double, std::string, std::vector of
// int64_t, double or std::string, std::optional of those (absent: unset), enums
// through choice(), nested structs through include() (same section) and
// section() (a sub-table), and a base struct's keys through include_base<B>().
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/text.h"

namespace sscl {

// One key as --describe prints it.
struct OptionDoc {
  std::string key;            // relative to the component's section, e.g. "alpha" or "augment.hflip"
  std::string type;           // int, float, bool, string, [int], [float], [string], or "a | b | c"
  std::string default_value;  // TOML text; "(unset)" for an optional key without a value
  std::string doc;
  std::string rule;  // what the check demands, e.g. ">= 0"; empty when anything of the type goes
};

namespace options_detail {

template <typename T>
struct is_optional : std::false_type {};
template <typename T>
struct is_optional<std::optional<T>> : std::true_type {
  using value_type = T;
};
template <typename T>
struct is_vector : std::false_type {};
template <typename T>
struct is_vector<std::vector<T>> : std::true_type {
  using value_type = T;
};

// The plain value type behind an optional.
template <typename V>
struct plain {
  using type = V;
};
template <typename V>
struct plain<std::optional<V>> {
  using type = V;
};
template <typename V>
using plain_t = typename plain<V>::type;

// The element type of a list, the type itself otherwise.
template <typename V>
struct element {
  using type = V;
};
template <typename V>
struct element<std::vector<V>> {
  using type = V;
};
template <typename V>
using element_t = typename element<V>::type;

// The type Config reads for a field (int and int64_t as themselves).
template <typename V>
std::string type_name() {
  if constexpr (std::is_same_v<V, bool>)
    return "bool";
  else if constexpr (std::is_integral_v<V>)
    return "int";
  else if constexpr (std::is_floating_point_v<V>)
    return "float";
  else if constexpr (std::is_same_v<V, std::string>)
    return "string";
  else if constexpr (is_vector<V>::value)
    return "[" + type_name<typename is_vector<V>::value_type>() + "]";
  else
    static_assert(sizeof(V) == 0, "unsupported option type");
}

// TOML text of a float (always with a '.' or exponent) and of a string; a bound
// as the shortest text that reads back (0, 0.5, 1e-08).
std::string format_double(double value);
std::string quote_string(const std::string& text);
std::string format_number(double value);

template <typename V>
std::string format_value(const V& value) {
  if constexpr (std::is_same_v<V, bool>)
    return value ? "true" : "false";
  else if constexpr (std::is_integral_v<V>)
    return std::to_string(value);
  else if constexpr (std::is_floating_point_v<V>)
    return format_double(value);
  else if constexpr (std::is_same_v<V, std::string>)
    return quote_string(value);
  else if constexpr (is_vector<V>::value) {
    std::string out = "[";
    for (size_t i = 0; i < value.size(); ++i) out += (i ? ", " : "") + format_value(value[i]);
    return out + "]";
  }
}

// What Config stores for a field's value (int is read and written as int64).
template <typename V>
auto config_value(const V& value) {
  if constexpr (std::is_same_v<V, int>)
    return static_cast<std::int64_t>(value);
  else
    return value;
}

// "must be >= 0" -> ">= 0", for the rule column of --describe.
std::string rule_of(const std::string& message);

}  // namespace options_detail

template <typename Owner>
class OptionSpec;

// A struct's declared options (built once per type from Owner::declare).
template <typename Owner>
const OptionSpec<Owner>& option_spec();

template <typename Owner>
class OptionSpec {
 public:
  // One declared key; checks are added by chaining: .between(0, 1).
  template <typename V>
  class Key;

  template <typename V>
  Key<V>& key(std::string name, V Owner::*field, std::string doc) {
    auto entry = std::make_unique<Key<V>>(std::move(name), field, std::move(doc));
    Key<V>& ref = *entry;
    entries_.push_back(std::move(entry));
    return ref;
  }

  // A string key whose value names one of `choices`, stored as the mapped value
  // (an enum).
  template <typename E>
  void choice(std::string name, E Owner::*field, std::vector<std::pair<std::string, E>> choices, std::string doc) {
    entries_.push_back(std::make_unique<Choice<E>>(std::move(name), field, std::move(choices), std::move(doc)));
  }

  // The keys of a nested options struct, in this section.
  template <typename Sub>
  void include(Sub Owner::*field) {
    entries_.push_back(std::make_unique<Nested<Sub>>("", field, ""));
  }

  // The keys of a base class's options struct (struct DerppOptions : DerOptions).
  template <typename Base>
  void include_base() {
    static_assert(std::is_base_of_v<Base, Owner>, "include_base<B>() needs B to be a base of the options struct");
    entries_.push_back(std::make_unique<BaseEntry<Base>>());
  }

  // The keys of a nested options struct under `name.` (a sub-table).
  template <typename Sub>
  void section(std::string name, Sub Owner::*field, std::string doc) {
    entries_.push_back(std::make_unique<Nested<Sub>>(std::move(name), field, std::move(doc)));
  }

  // A key that takes a value or a list of another type (data.class_order =
  // "random" or [3, 1, 2, 0]): a value goes to `field`, a list to `list`. The
  // default is `field`'s; the caller checks the list against what it knows.
  template <typename A, typename B>
  void either(std::string name, A Owner::*field, B Owner::*list, std::string doc) {
    static_assert(options_detail::is_vector<B>::value && !options_detail::is_vector<A>::value,
                  "either(): a value field and a list field");
    entries_.push_back(std::make_unique<Either<A, B>>(std::move(name), field, list, std::move(doc)));
  }

  // A key that is refused with `message` (e.g. a reference key sscl has no use for).
  void refuse(std::string name, std::string message) {
    entries_.push_back(std::make_unique<Refused>(std::move(name), std::move(message)));
  }

  // A check over several fields, run after every key is read; it throws through
  // section.fail(key, message).
  void rule(std::function<void(const Owner&, const ConfigSection&)> check) { rules_.push_back(std::move(check)); }

  void read(Owner& into, const ConfigSection& section) const {
    for (const auto& entry : entries_) entry->read(into, section);
    for (const auto& check : rules_) check(into, section);
  }

  void describe(const Owner& defaults, const std::string& prefix, std::vector<OptionDoc>& out) const {
    for (const auto& entry : entries_) entry->describe(defaults, prefix, out);
  }

 private:
  struct Entry {
    virtual ~Entry() = default;
    virtual void read(Owner& into, const ConfigSection& section) const = 0;
    virtual void describe(const Owner& defaults, const std::string& prefix, std::vector<OptionDoc>& out) const = 0;
  };

  template <typename E>
  struct Choice;
  template <typename Sub>
  struct Nested;
  template <typename Base>
  struct BaseEntry;
  template <typename A, typename B>
  struct Either;
  struct Refused;

  std::vector<std::unique_ptr<Entry>> entries_;
  std::vector<std::function<void(const Owner&, const ConfigSection&)>> rules_;
};

template <typename Owner>
template <typename V>
class OptionSpec<Owner>::Key : public OptionSpec<Owner>::Entry {
 public:
  using Plain = options_detail::plain_t<V>;
  static constexpr bool kOptional = options_detail::is_optional<V>::value;

  Key(std::string name, V Owner::*field, std::string doc)
      : name_(std::move(name)), field_(field), doc_(std::move(doc)) {}

  // A check of the value; `message` completes "config key 'K' (origin): ", e.g.
  // "must be a probability in [0, 1]".
  Key& check(std::function<bool(const Plain&)> ok, std::string message) {
    checks_.emplace_back(std::move(ok), std::move(message));
    return *this;
  }
  // Numeric bounds; on a list they apply to every element.
  Key& min(double bound) {
    return element_check([bound](double v) { return v >= bound; }, "must be >= " + bound_text(bound));
  }
  Key& above(double bound) {
    return element_check([bound](double v) { return v > bound; }, "must be > " + bound_text(bound));
  }
  Key& max(double bound) {
    return element_check([bound](double v) { return v <= bound; }, "must be <= " + bound_text(bound));
  }
  // A closed range: "must be in [lo, hi]".
  Key& between(double lo, double hi) {
    return element_check([lo, hi](double v) { return v >= lo && v <= hi; },
                         "must be in [" + bound_text(lo) + ", " + bound_text(hi) + "]");
  }
  // A string that must be one of `allowed`.
  Key& one_of(std::vector<std::string> allowed) {
    static_assert(std::is_same_v<Plain, std::string>, "one_of() is for string keys");
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    choices_ = allowed;
    return check(
        [allowed](const std::string& v) { return std::find(allowed.begin(), allowed.end(), v) != allowed.end(); },
        "must be one of: " + list);
  }
  // A list key that also takes a single value, read as a list of one
  // (data.labels_per_class = 5 or [5, 5, 1, 1, 1]).
  Key& scalar_or_list() {
    static_assert(options_detail::is_vector<Plain>::value, "scalar_or_list() is for list keys");
    scalar_or_list_ = true;
    return *this;
  }
  // The key must be given (there is no default).
  Key& required() {
    required_ = true;
    return *this;
  }
  // The reference framework's name for the same key; giving both is an error.
  Key& alias(std::string other) {
    aliases_.push_back(std::move(other));
    return *this;
  }

  void read(Owner& into, const ConfigSection& section) const override {
    std::string given;  // the key the config gives, if any
    if (section.has(name_)) given = name_;
    for (const auto& a : aliases_) {
      if (!section.has(a)) continue;
      if (!given.empty()) section.fail(given, "also given as '" + a + "' (the reference's name for it); give one");
      given = a;
    }
    V& value = into.*field_;
    if (given.empty() && required_) section.config().get<Plain>(section.full_key(name_));  // names the missing key
    if (!given.empty()) {
      if constexpr (options_detail::is_vector<Plain>::value) {
        if (scalar_or_list_ && !section.is_array(given))
          value = Plain{section.get<options_detail::element_t<Plain>>(given)};
        else
          value = section.get<Plain>(given);
      } else {
        value = section.get<Plain>(given);
      }
    } else if constexpr (kOptional) {
      if (!value) return;  // unset and not given: nothing to check or record
    }
    const Plain& plain = current(value);
    const std::string& where = given.empty() ? name_ : given;
    for (const auto& [ok, message] : checks_)
      if (!ok(plain)) {
        std::string text = message;
        if constexpr (std::is_same_v<Plain, std::string>)
          if (!choices_.empty()) text += "; got '" + plain + "'";
        section.fail(where, text);
      }
    // The resolved config names every key that took effect, defaults included.
    if (given.empty()) section.config().record_default(section.full_key(name_), options_detail::config_value(plain));
  }

  void describe(const Owner& defaults, const std::string& prefix, std::vector<OptionDoc>& out) const override {
    OptionDoc doc;
    doc.key = prefix + name_;
    doc.type = choices_.empty() ? options_detail::type_name<Plain>() : join(choices_, " | ");
    if constexpr (options_detail::is_vector<Plain>::value)
      if (scalar_or_list_) doc.type = options_detail::type_name<options_detail::element_t<Plain>>() + " | " + doc.type;
    const V& value = defaults.*field_;
    if (required_)
      doc.default_value = "(required)";
    else if constexpr (kOptional)
      doc.default_value = value ? options_detail::format_value(*value) : "(unset)";
    else
      doc.default_value = options_detail::format_value(value);
    doc.doc = doc_;
    for (const auto& a : aliases_) doc.doc += (doc.doc.empty() ? "" : " ") + std::string("(also: ") + a + ")";
    std::vector<std::string> rules;
    for (const auto& check : checks_)
      if (choices_.empty()) rules.push_back(options_detail::rule_of(check.second));
    doc.rule = join(rules, ", ");
    out.push_back(std::move(doc));
  }

 private:
  static const Plain& current(const V& value) {
    if constexpr (kOptional)
      return *value;
    else
      return value;
  }
  static std::string bound_text(double bound) { return options_detail::format_number(bound); }
  Key& element_check(std::function<bool(double)> ok, std::string message) {
    using E = options_detail::element_t<Plain>;
    static_assert(std::is_arithmetic_v<E> && !std::is_same_v<E, bool>, "bounds are for numeric keys");
    if constexpr (options_detail::is_vector<Plain>::value)
      return check(
          [ok](const Plain& v) {
            for (const auto& e : v)
              if (!ok(static_cast<double>(e))) return false;
            return true;
          },
          "every entry " + message);
    else
      return check([ok](const Plain& v) { return ok(static_cast<double>(v)); }, std::move(message));
  }
  std::string name_;
  V Owner::*field_;
  std::string doc_;
  std::vector<std::pair<std::function<bool(const Plain&)>, std::string>> checks_;
  std::vector<std::string> aliases_;
  std::vector<std::string> choices_;
  bool required_ = false;
  bool scalar_or_list_ = false;
};

template <typename Owner>
template <typename E>
struct OptionSpec<Owner>::Choice : OptionSpec<Owner>::Entry {
  Choice(std::string name, E Owner::*field, std::vector<std::pair<std::string, E>> choices, std::string doc)
      : name(std::move(name)), field(field), choices(std::move(choices)), doc(std::move(doc)) {}

  std::string name_of(E value) const {
    for (const auto& [text, v] : choices)
      if (v == value) return text;
    return "?";
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& c : choices) out.push_back(c.first);
    return out;
  }

  void read(Owner& into, const ConfigSection& section) const override {
    const std::string text = section.get_choice(name, name_of(into.*field), names());
    for (const auto& [t, v] : choices)
      if (t == text) into.*field = v;
    if (!section.has(name)) section.config().record_default(section.full_key(name), text);
  }
  void describe(const Owner& defaults, const std::string& prefix, std::vector<OptionDoc>& out) const override {
    std::string type;
    for (const auto& n : names()) type += (type.empty() ? "" : " | ") + n;
    out.push_back({prefix + name, type, options_detail::quote_string(name_of(defaults.*field)), doc, ""});
  }

  std::string name;
  E Owner::*field;
  std::vector<std::pair<std::string, E>> choices;
  std::string doc;
};

template <typename Owner>
template <typename Sub>
struct OptionSpec<Owner>::Nested : OptionSpec<Owner>::Entry {
  Nested(std::string name, Sub Owner::*field, std::string doc)
      : name(std::move(name)), field(field), doc(std::move(doc)) {}
  void read(Owner& into, const ConfigSection& section) const override {
    option_spec<Sub>().read(into.*field, name.empty() ? section : section.section(name));
  }
  void describe(const Owner& defaults, const std::string& prefix, std::vector<OptionDoc>& out) const override {
    option_spec<Sub>().describe(defaults.*field, name.empty() ? prefix : prefix + name + ".", out);
  }
  std::string name;
  Sub Owner::*field;
  std::string doc;
};

template <typename Owner>
template <typename Base>
struct OptionSpec<Owner>::BaseEntry : OptionSpec<Owner>::Entry {
  void read(Owner& into, const ConfigSection& section) const override {
    option_spec<Base>().read(static_cast<Base&>(into), section);
  }
  void describe(const Owner& defaults, const std::string& prefix, std::vector<OptionDoc>& out) const override {
    option_spec<Base>().describe(static_cast<const Base&>(defaults), prefix, out);
  }
};

template <typename Owner>
template <typename A, typename B>
struct OptionSpec<Owner>::Either : OptionSpec<Owner>::Entry {
  Either(std::string name, A Owner::*field, B Owner::*list, std::string doc)
      : name(std::move(name)), field(field), list(list), doc(std::move(doc)) {}
  void read(Owner& into, const ConfigSection& section) const override {
    if (!section.has(name)) {
      section.config().record_default(section.full_key(name), options_detail::config_value(into.*field));
    } else if (section.is_array(name)) {
      into.*list = section.get<B>(name);
    } else {
      into.*field = section.get<A>(name);
    }
  }
  void describe(const Owner& defaults, const std::string& prefix, std::vector<OptionDoc>& out) const override {
    out.push_back({prefix + name, options_detail::type_name<A>() + " | " + options_detail::type_name<B>(),
                   options_detail::format_value(defaults.*field), doc, ""});
  }
  std::string name;
  A Owner::*field;
  B Owner::*list;
  std::string doc;
};

template <typename Owner>
struct OptionSpec<Owner>::Refused : OptionSpec<Owner>::Entry {
  Refused(std::string name, std::string message) : name(std::move(name)), message(std::move(message)) {}
  void read(Owner&, const ConfigSection& section) const override {
    if (section.has(name)) section.fail(name, message);
  }
  void describe(const Owner&, const std::string&, std::vector<OptionDoc>&) const override {}
  std::string name;
  std::string message;
};

template <typename Owner>
const OptionSpec<Owner>& option_spec() {
  static const OptionSpec<Owner> spec = [] {
    OptionSpec<Owner> s;
    Owner::declare(s);
    return s;
  }();
  return spec;
}

// The options of a component that has none (it still rejects every key given).
struct NoOptions {
  static void declare(OptionSpec<NoOptions>&) {}
};

// The options of `section`, starting from `defaults`: every declared key that the
// config gives is read and checked (and so marked used), and every key's
// effective value is recorded for the resolved config.
template <typename Owner>
Owner read_options(const ConfigSection& section, Owner defaults = Owner{}) {
  option_spec<Owner>().read(defaults, section);
  return defaults;
}

// The declared keys with the defaults of `defaults`, for --describe.
template <typename Owner>
std::vector<OptionDoc> describe_options(const Owner& defaults = Owner{}) {
  std::vector<OptionDoc> out;
  option_spec<Owner>().describe(defaults, "", out);
  return out;
}

}  // namespace sscl
