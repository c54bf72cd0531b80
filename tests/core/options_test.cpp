// Options declared once (core/options.h): one declaration reads, checks, records
// the resolved config and describes.
#include "core/options.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace sscl {
namespace {

enum class Storage { kDisk, kRam };

struct InnerOptions {
  int64_t size = 200;
  double weight = 0.5;
  static void declare(OptionSpec<InnerOptions>& o) {
    o.key("size", &InnerOptions::size, "entries").min(0);
    o.key("weight", &InnerOptions::weight, "a probability").min(0).max(1);
  }
};

struct OuterOptions {
  InnerOptions inner;
  InnerOptions sub;
  double alpha = 0.3;
  int count = 2;
  bool flag = false;
  std::string mode = "fixed";
  std::vector<double> stds = {1.0};
  std::optional<double> epochs;
  Storage storage = Storage::kDisk;
  int64_t lambda_u = 1;

  static void declare(OptionSpec<OuterOptions>& o) {
    o.include(&OuterOptions::inner);
    o.section("sub", &OuterOptions::sub, "a sub-table");
    o.key("alpha", &OuterOptions::alpha, "weight of the term").min(0);
    o.key("count", &OuterOptions::count, "how many").above(0);
    o.key("flag", &OuterOptions::flag, "a switch");
    o.key("mode", &OuterOptions::mode, "how").one_of({"fixed", "random"});
    o.key("stds", &OuterOptions::stds, "per channel").above(0);
    o.key("epochs", &OuterOptions::epochs, "epochs instead of iterations").above(0);
    o.choice("storage", &OuterOptions::storage, {{"disk", Storage::kDisk}, {"ram", Storage::kRam}}, "where");
    o.key("lambda_u", &OuterOptions::lambda_u, "unlabeled weight").alias("lambda_unsup");
    o.refuse("old_key", "has no use in sscl; set x instead");
    o.rule([](const OuterOptions& v, const ConfigSection& s) {
      if (v.flag && v.count > 3) s.fail("count", "must be <= 3 with flag = true");
    });
  }
};

OuterOptions read_outer(const std::string& toml, Config* keep = nullptr) {
  Config config = Config::from_string("[m]\n" + toml, "o.toml");
  auto options = read_options<OuterOptions>(config.section("m"));
  config.ensure_all_used();
  if (keep) *keep = config;
  return options;
}

std::string options_error(const std::string& toml) {
  try {
    read_outer(toml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Options, AbsentKeysKeepTheDefaultsObjectsValues) {
  const auto o = read_outer("");
  EXPECT_EQ(o.inner.size, 200);
  EXPECT_DOUBLE_EQ(o.alpha, 0.3);
  EXPECT_FALSE(o.epochs.has_value());
  EXPECT_EQ(o.storage, Storage::kDisk);
  OuterOptions other;
  other.alpha = 0.1;
  Config config = Config::from_string("[m]\n", "o.toml");
  EXPECT_DOUBLE_EQ(read_options(config.section("m"), other).alpha, 0.1);
}

TEST(Options, GivenKeysAreReadTypedIncludingNestedSectionsAndChoices) {
  const auto o = read_outer(
      "size = 5\nalpha = 2\ncount = 3\nflag = true\nmode = \"random\"\nstds = [1, 2.5]\nepochs = 1.5\n"
      "storage = \"ram\"\n[m.sub]\nweight = 1.0\n");
  EXPECT_EQ(o.inner.size, 5);
  EXPECT_DOUBLE_EQ(o.alpha, 2.0);  // an integer is a float
  EXPECT_EQ(o.count, 3);
  EXPECT_TRUE(o.flag);
  EXPECT_EQ(o.mode, "random");
  EXPECT_EQ(o.stds, (std::vector<double>{1.0, 2.5}));
  EXPECT_DOUBLE_EQ(*o.epochs, 1.5);
  EXPECT_EQ(o.storage, Storage::kRam);
  EXPECT_DOUBLE_EQ(o.sub.weight, 1.0);
  EXPECT_EQ(o.sub.size, 200);
}

TEST(Options, ChecksNameTheKeyAndWhereItWasSet) {
  EXPECT_EQ(options_error("alpha = -1\n"), "config key 'm.alpha' (o.toml:2): must be >= 0");
  EXPECT_EQ(options_error("count = 0\n"), "config key 'm.count' (o.toml:2): must be > 0");
  EXPECT_EQ(options_error("[m.sub]\nweight = 2.0\n"), "config key 'm.sub.weight' (o.toml:3): must be <= 1");
  EXPECT_EQ(options_error("stds = [1.0, 0.0]\n"), "config key 'm.stds' (o.toml:2): every entry must be > 0");
  EXPECT_EQ(options_error("mode = \"x\"\n"), "config key 'm.mode' (o.toml:2): must be one of: fixed, random; got 'x'");
  EXPECT_EQ(options_error("epochs = 0.0\n"), "config key 'm.epochs' (o.toml:2): must be > 0");
  EXPECT_EQ(options_error("storage = \"tape\"\n"),
            "config key 'm.storage' (o.toml:2) must be one of: disk, ram; got 'tape'");
  EXPECT_EQ(options_error("alpha = \"a\"\n"), "config key 'm.alpha' (o.toml:2) must be a float, got a string");
  EXPECT_EQ(options_error("old_key = 1\n"), "config key 'm.old_key' (o.toml:2): has no use in sscl; set x instead");
  EXPECT_EQ(options_error("flag = true\ncount = 4\n"),
            "config key 'm.count' (o.toml:3): must be <= 3 with flag = true");
  EXPECT_EQ(options_error("alphaa = 1.0\n"), "unknown config key 'm.alphaa' (from o.toml:2)");
}

struct RangeOptions {
  double p = 0.5;
  std::vector<double> ps = {0.5};
  static void declare(OptionSpec<RangeOptions>& o) {
    o.key("p", &RangeOptions::p, "a probability").between(0, 1);
    o.key("ps", &RangeOptions::ps, "probabilities").between(0, 1);
  }
};

TEST(Options, BetweenIsAClosedRangeOnValuesAndOnEveryEntry) {
  const auto error = [](const std::string& toml) {
    const Config config = Config::from_string("[r]\n" + toml, "r.toml");
    try {
      read_options<RangeOptions>(config.section("r"));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error("p = 1.0\nps = [0.0, 1.0]\n"), "no error");
  EXPECT_EQ(error("p = 1.5\n"), "config key 'r.p' (r.toml:2): must be in [0, 1]");
  EXPECT_EQ(error("ps = [0.5, -0.1]\n"), "config key 'r.ps' (r.toml:2): every entry must be in [0, 1]");
  EXPECT_EQ(describe_options<RangeOptions>()[0].rule, "in [0, 1]");
}

TEST(Options, AnAliasReadsTheSameFieldButNotBoth) {
  EXPECT_EQ(read_outer("lambda_unsup = 4\n").lambda_u, 4);
  EXPECT_EQ(options_error("lambda_u = 1\nlambda_unsup = 4\n"),
            "config key 'm.lambda_u' (o.toml:2): also given as 'lambda_unsup' (the reference's name for it); give one");
}

TEST(Options, TheResolvedConfigHoldsEveryKeyThatTookEffect) {
  Config config;
  read_outer("alpha = 2.0\nlambda_unsup = 3\n", &config);
  const std::string toml = config.to_toml();
  EXPECT_NE(toml.find("alpha = 2.0\n"), std::string::npos) << toml;
  EXPECT_NE(toml.find("size = 200\n"), std::string::npos) << toml;
  EXPECT_NE(toml.find("[m.sub]\nsize = 200\nweight = 0.5\n"), std::string::npos) << toml;
  EXPECT_NE(toml.find("storage = \"disk\"\n"), std::string::npos) << toml;
  EXPECT_NE(toml.find("stds = [1.0]\n"), std::string::npos) << toml;
  EXPECT_EQ(toml.find("epochs"), std::string::npos) << "an unset optional key is not written";
  EXPECT_EQ(toml.find("lambda_u ="), std::string::npos) << "the alias given stands for the key";
  // The defaults are not keys of the config itself.
  EXPECT_FALSE(config.has("m.size"));
  // Reading the resolved config again gives the same options and the same text.
  Config again = Config::from_string(toml, "resolved.toml");
  const auto o = read_options<OuterOptions>(again.section("m"));
  again.ensure_all_used();
  EXPECT_DOUBLE_EQ(o.alpha, 2.0);
  EXPECT_EQ(o.lambda_u, 3);
  EXPECT_EQ(again.to_toml(), toml);
}

TEST(Options, TwoDeclarationsOfOneKeyMustAgreeOnItsDefault) {
  Config config = Config::from_string("[m]\n", "o.toml");
  config.record_default("m.k", int64_t{1});
  config.record_default("m.k", int64_t{1});
  EXPECT_THROW(config.record_default("m.k", int64_t{2}), Error);
}

TEST(Options, DescribeListsEveryKeyWithTypeDefaultRuleAndDoc) {
  OuterOptions defaults;
  defaults.alpha = 0.1;
  const auto docs = describe_options(defaults);
  std::vector<std::string> keys;
  for (const auto& d : docs) keys.push_back(d.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"size", "weight", "sub.size", "sub.weight", "alpha", "count", "flag",
                                            "mode", "stds", "epochs", "storage", "lambda_u"}));
  const auto& alpha = docs[4];
  EXPECT_EQ(alpha.type, "float");
  EXPECT_EQ(alpha.default_value, "0.1");
  EXPECT_EQ(alpha.rule, ">= 0");
  EXPECT_EQ(alpha.doc, "weight of the term");
  EXPECT_EQ(docs[1].rule, ">= 0, <= 1");
  EXPECT_EQ(docs[7].type, "fixed | random");
  EXPECT_EQ(docs[7].default_value, "\"fixed\"");
  EXPECT_EQ(docs[8].type, "[float]");
  EXPECT_EQ(docs[8].rule, "every entry > 0");
  EXPECT_EQ(docs[9].default_value, "(unset)");
  EXPECT_EQ(docs[10].type, "disk | ram");
  EXPECT_EQ(docs[11].doc, "unlabeled weight (also: lambda_unsup)");
}

struct PerTaskOptions {
  std::vector<int64_t> budget{5};
  std::string order = "ascending";
  std::vector<int64_t> order_list;
  static void declare(OptionSpec<PerTaskOptions>& o) {
    o.key("budget", &PerTaskOptions::budget, "one number or one per task").scalar_or_list().min(-1);
    o.either("order", &PerTaskOptions::order, &PerTaskOptions::order_list, "a name or the ids");
  }
};

TEST(Options, ScalarOrListAndEitherTakeAValueOrAList) {
  const auto read = [](const std::string& toml) {
    Config config = Config::from_string("[m]\n" + toml, "o.toml");
    const auto options = read_options<PerTaskOptions>(config.section("m"));
    return std::make_pair(options, config.to_toml());
  };
  auto [scalar, scalar_toml] = read("budget = 3\norder = \"random\"\n");
  EXPECT_EQ(scalar.budget, (std::vector<int64_t>{3}));
  EXPECT_EQ(scalar.order, "random");
  EXPECT_TRUE(scalar.order_list.empty());
  auto [list, list_toml] = read("budget = [3, 1, -1]\norder = [2, 0, 1]\n");
  EXPECT_EQ(list.budget, (std::vector<int64_t>{3, 1, -1}));
  EXPECT_EQ(list.order, "ascending");
  EXPECT_EQ(list.order_list, (std::vector<int64_t>{2, 0, 1}));
  // Defaults are recorded as declared; checks apply to a value and to each entry.
  auto [defaults, defaults_toml] = read("");
  EXPECT_NE(defaults_toml.find("budget = [5]\n"), std::string::npos) << defaults_toml;
  EXPECT_NE(defaults_toml.find("order = \"ascending\""), std::string::npos) << defaults_toml;
  EXPECT_THROW(read("budget = -2\n"), ConfigError);
  EXPECT_THROW(read("budget = [1, -2]\n"), ConfigError);
  EXPECT_THROW(read("budget = \"five\"\n"), ConfigError);
  EXPECT_THROW(read("order = [\"a\"]\n"), ConfigError);
  const auto docs = describe_options(PerTaskOptions{});
  EXPECT_EQ(docs[0].type, "int | [int]");
  EXPECT_EQ(docs[1].type, "string | [int]");
}

TEST(Options, AValueMayBecomeAListAcrossOverridesButNotATable) {
  Config config = Config::from_string("[m]\nbudget = 5\norder = \"random\"\n", "o.toml");
  config.apply_override("m.budget=[1, 2]");
  config.apply_override("m.order=[1, 0]");
  const auto options = read_options<PerTaskOptions>(config.section("m"));
  EXPECT_EQ(options.budget, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(options.order_list, (std::vector<int64_t>{1, 0}));
  config.apply_override("m.budget=4");
  EXPECT_EQ(read_options<PerTaskOptions>(config.section("m")).budget, (std::vector<int64_t>{4}));
  EXPECT_THROW(config.apply_override("m.budget={a = 1}"), ConfigError);
}

}  // namespace
}  // namespace sscl
