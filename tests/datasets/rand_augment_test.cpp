#include "datasets/rand_augment.h"

#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/core.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "core/options.h"
#include "datasets/augment_ops.h"

namespace sscl {
namespace {

RandAugmentOptions options(const std::string& variant, double prob = 0.5) {
  RandAugmentOptions o;
  o.variant = variant;
  if (variant == "fixmatch") o.num_ops = 2;
  o.prob = prob;
  return o;
}

// Mid-range values, so that every photometric op changes them.
cv::Mat test_image(int rows, int cols, int channels) {
  cv::Mat m(rows, cols, CV_8UC(channels));
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x)
      for (int c = 0; c < channels; ++c)
        m.ptr<uint8_t>(y)[x * channels + c] = static_cast<uint8_t>(40 + (13 * x + 29 * y + 37 * c) % 160);
  return m;
}

bool ra_same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::countNonZero(a.reshape(1) != b.reshape(1)) == 0;
}

TEST(RandAugment, PoolsAreTimmsIncreasingTransformsAndFixMatchs) {
  const RandAugment reference(options("reference"), cv::Scalar(0));
  EXPECT_EQ(reference.op_names(),
            (std::vector<std::string>{"AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize",
                                      "SolarizeAdd", "Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY",
                                      "TranslateX", "TranslateY"}));
  const RandAugment fixmatch(options("fixmatch"), cv::Scalar(0));
  EXPECT_EQ(
      fixmatch.op_names(),
      (std::vector<std::string>{"AutoContrast", "Brightness", "Color", "Contrast", "Equalize", "Identity", "Posterize",
                                "Rotate", "Sharpness", "ShearX", "ShearY", "Solarize", "TranslateX", "TranslateY"}));
  EXPECT_EQ(reference.op_index("Identity"), -1);
  EXPECT_EQ(fixmatch.op_index("Invert"), -1);
}

TEST(RandAugment, ReferenceLevelToArgument) {
  const RandAugment ra(options("reference"), cv::Scalar(0));
  auto arg = [&](const char* name, double level, bool negated = false) {
    return ra.argument(ra.op_index(name), level, negated);
  };
  // Level 7 of 10.
  EXPECT_DOUBLE_EQ(arg("Rotate", 7), 21.0);
  EXPECT_DOUBLE_EQ(arg("Rotate", 7, true), -21.0);
  EXPECT_EQ(arg("Posterize", 7), 2);     // 4 - int(2.8)
  EXPECT_EQ(arg("Solarize", 7), 77);     // 256 - int(179.2)
  EXPECT_EQ(arg("SolarizeAdd", 7), 77);  // int(77.0)
  EXPECT_NEAR(arg("Color", 7), 1.63, 1e-12);
  EXPECT_NEAR(arg("Sharpness", 7, true), 0.37, 1e-12);
  EXPECT_NEAR(arg("ShearY", 7, true), -0.21, 1e-12);
  EXPECT_NEAR(arg("TranslateX", 7), 0.315, 1e-12);
  EXPECT_EQ(arg("AutoContrast", 7), 0);
  // The ends of the ranges.
  EXPECT_EQ(arg("Posterize", 0), 4);
  EXPECT_EQ(arg("Solarize", 0), 256);
  EXPECT_EQ(arg("SolarizeAdd", 0), 0);
  EXPECT_DOUBLE_EQ(arg("Brightness", 0, true), 1.0);
  EXPECT_EQ(arg("Posterize", 10), 0);
  EXPECT_EQ(arg("Solarize", 10), 0);
  EXPECT_EQ(arg("SolarizeAdd", 10), 110);
  EXPECT_NEAR(arg("Contrast", 10), 1.9, 1e-12);
  EXPECT_NEAR(arg("Contrast", 10, true), 0.1, 1e-12);
  EXPECT_DOUBLE_EQ(arg("Rotate", 10), 30.0);
  EXPECT_NEAR(arg("ShearX", 10), 0.3, 1e-12);
  EXPECT_NEAR(arg("TranslateY", 10, true), -0.45, 1e-12);
  // int() truncates between the steps.
  EXPECT_EQ(arg("Posterize", 7.5), 1);   // 4 - int(3.0)
  EXPECT_EQ(arg("Posterize", 2.4), 4);   // 4 - int(0.96)
  EXPECT_EQ(arg("Solarize", 2.4), 195);  // 256 - int(61.44)
  // Only geometric and enhance arguments take a sign.
  EXPECT_TRUE(ra.is_signed(ra.op_index("Color")));
  EXPECT_FALSE(ra.is_signed(ra.op_index("Solarize")));
  EXPECT_EQ(arg("Solarize", 7, true), 77);
}

TEST(RandAugment, FixMatchLevelToArgument) {
  const RandAugment ra(options("fixmatch"), cv::Scalar(0));
  auto arg = [&](const char* name, double level, bool negated = false) {
    return ra.argument(ra.op_index(name), level, negated);
  };
  EXPECT_NEAR(arg("Brightness", 5), 0.5, 1e-12);
  EXPECT_NEAR(arg("Color", 5, true), 0.5, 1e-12) << "enhance factors take no sign";
  EXPECT_EQ(arg("Posterize", 5), 6);  // int(2.0) + 4
  EXPECT_EQ(arg("Rotate", 5, true), -15);
  EXPECT_EQ(arg("Solarize", 5), 128);
  EXPECT_NEAR(arg("ShearX", 5), 0.15, 1e-12);
  EXPECT_NEAR(arg("TranslateY", 5, true), -0.15, 1e-12);
  EXPECT_NEAR(arg("Sharpness", 1), 0.14, 1e-12);
  EXPECT_EQ(arg("Posterize", 1), 4);
  EXPECT_EQ(arg("Rotate", 1), 3);
  EXPECT_EQ(arg("Solarize", 1), 231);  // 256 - int(25.6)
  EXPECT_NEAR(arg("Contrast", 9), 0.86, 1e-12);
  EXPECT_EQ(arg("Posterize", 9), 7);  // int(3.6) + 4
  EXPECT_EQ(arg("Rotate", 9), 27);
  EXPECT_EQ(arg("Solarize", 9), 26);  // 256 - int(230.4)
  EXPECT_FALSE(ra.is_signed(ra.op_index("Brightness")));
}

TEST(RandAugment, ApplyOpHandsTheMappedArgumentToTheOp) {
  const cv::Scalar fill(17, 18, 19);
  const cv::Mat image = test_image(6, 10, 3);
  const RandAugment reference(options("reference"), fill);
  auto run = [&](const RandAugment& ra, const char* name, double level, bool negated) {
    cv::Mat out = image.clone();
    ra.apply_op(out, ra.op_index(name), level, negated);
    return out;
  };
  EXPECT_TRUE(ra_same(run(reference, "Posterize", 7, false), posterize(image, 2)));
  EXPECT_TRUE(ra_same(run(reference, "Solarize", 7, false), solarize(image, 77)));
  EXPECT_TRUE(ra_same(run(reference, "SolarizeAdd", 7, false), solarize_add(image, 77)));
  EXPECT_TRUE(ra_same(run(reference, "Brightness", 10, true), brightness(image, 1 - 0.9)));
  EXPECT_TRUE(ra_same(run(reference, "Rotate", 5, true), rotate(image, -15, fill)));
  EXPECT_TRUE(ra_same(run(reference, "TranslateX", 10, false), translate_x(image, 4.5, fill)));  // 0.45 * 10 columns
  EXPECT_TRUE(ra_same(run(reference, "TranslateY", 10, true), translate_y(image, -2.7, fill)));  // 0.45 * 6 rows
  EXPECT_TRUE(ra_same(run(reference, "Invert", 3, false), invert(image)));
  const RandAugment fixmatch(options("fixmatch"), fill);
  EXPECT_TRUE(ra_same(run(fixmatch, "TranslateX", 5, false), translate_x(image, 1, fill)));  // int(0.15 * 10)
  EXPECT_TRUE(ra_same(run(fixmatch, "TranslateX", 5, true), translate_x(image, -1, fill)));
  EXPECT_TRUE(ra_same(run(fixmatch, "Identity", 9, false), image));
  EXPECT_FALSE(ra_same(run(fixmatch, "TranslateX", 9, false), image));
}

TEST(RandAugment, SameSeedSameImageDifferentSeedsDiffer) {
  for (const char* variant : {"reference", "fixmatch"}) {
    const RandAugment ra(options(variant), cv::Scalar(128, 100, 90));
    const cv::Mat image = test_image(12, 12, 3);
    std::vector<cv::Mat> outputs;
    for (uint64_t seed = 0; seed < 20; ++seed) {
      cv::Mat a = image.clone(), b = image.clone();
      Rng ra_rng(seed), rb_rng(seed);
      ra.apply(a, ra_rng);
      ra.apply(b, rb_rng);
      EXPECT_TRUE(ra_same(a, b)) << variant << " seed " << seed;
      outputs.push_back(a);
    }
    int distinct = 0;
    for (size_t i = 0; i < outputs.size(); ++i) {
      bool seen = false;
      for (size_t j = 0; j < i && !seen; ++j) seen = ra_same(outputs[i], outputs[j]);
      distinct += !seen;
    }
    EXPECT_GE(distinct, 10) << variant;
  }
}

TEST(RandAugment, ProbabilityZeroLeavesTheImageAlone) {
  for (const char* variant : {"reference", "fixmatch"}) {
    const RandAugment ra(options(variant, 0.0), cv::Scalar(0));
    const cv::Mat image = test_image(8, 8, 1);
    for (uint64_t seed = 0; seed < 50; ++seed) {
      cv::Mat out = image.clone();
      Rng rng(seed);
      std::vector<RandAugmentStep> steps;
      ra.apply(out, rng, &steps);
      EXPECT_TRUE(ra_same(out, image));
      ASSERT_EQ(steps.size(), static_cast<size_t>(ra.options().ops()));
      for (const RandAugmentStep& s : steps) EXPECT_FALSE(s.applied);
    }
  }
}

TEST(RandAugment, AppliesNumOpsDrawsThatReplayToTheSameImage) {
  for (const char* variant : {"reference", "fixmatch"})
    for (int num_ops : {1, 3, 5}) {
      RandAugmentOptions o = options(variant);
      o.num_ops = num_ops;
      const RandAugment ra(o, cv::Scalar(60, 70, 80));
      const cv::Mat image = test_image(10, 9, 3);
      int applied = 0;
      for (uint64_t seed = 0; seed < 30; ++seed) {
        cv::Mat out = image.clone();
        Rng rng(seed);
        std::vector<RandAugmentStep> steps;
        ra.apply(out, rng, &steps);
        ASSERT_EQ(steps.size(), static_cast<size_t>(num_ops));
        cv::Mat replay = image.clone();
        for (const RandAugmentStep& s : steps) {
          ASSERT_GE(s.op, 0);
          ASSERT_LT(s.op, static_cast<int>(ra.op_names().size()));
          if (!s.applied) continue;
          ra.apply_op(replay, s.op, s.level, s.negated);
          ++applied;
        }
        EXPECT_TRUE(ra_same(out, replay)) << variant << " seed " << seed;
      }
      // With p 0.5, about half of the 30 * num_ops draws apply.
      EXPECT_GT(applied, 30 * num_ops / 4) << variant;
      EXPECT_LT(applied, 30 * num_ops * 3 / 4) << variant;
    }
}

TEST(RandAugment, ReferenceLevelsAreNoisyAndClipped) {
  RandAugmentOptions o = options("reference", 1.0);
  o.magnitude = 10;
  o.magnitude_std = 0.5;
  const RandAugment ra(o, cv::Scalar(0));
  int at_max = 0, below = 0;
  std::set<double> levels;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    cv::Mat image = test_image(6, 6, 1);
    Rng rng(seed);
    std::vector<RandAugmentStep> steps;
    ra.apply(image, rng, &steps);
    for (const RandAugmentStep& s : steps) {
      ASSERT_TRUE(s.applied);
      ASSERT_GE(s.level, 0.0);
      ASSERT_LE(s.level, 10.0);
      at_max += s.level == 10.0;
      below += s.level < 10.0;
      levels.insert(s.level);
    }
  }
  EXPECT_GT(at_max, 50) << "about half the noisy levels clip at max_level";
  EXPECT_GT(below, 50);
  EXPECT_GT(levels.size(), 100u) << "a fresh level per op";

  o.magnitude = 7;
  o.magnitude_std = 0;
  const RandAugment exact(o, cv::Scalar(0));
  cv::Mat image = test_image(6, 6, 1);
  Rng rng(3);
  std::vector<RandAugmentStep> steps;
  exact.apply(image, rng, &steps);
  for (const RandAugmentStep& s : steps) EXPECT_EQ(s.level, 7.0);
}

TEST(RandAugment, OpsAreDrawnUniformlyWithReplacementAndSignsAreRandom) {
  const RandAugment ra(options("reference", 1.0), cv::Scalar(0));
  std::vector<int> counts(ra.op_names().size(), 0);
  int repeats = 0, negated = 0, positive = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    cv::Mat image = test_image(5, 5, 1);
    Rng rng(seed);
    std::vector<RandAugmentStep> steps;
    ra.apply(image, rng, &steps);
    std::set<int> ops;
    for (const RandAugmentStep& s : steps) {
      ++counts[s.op];
      ops.insert(s.op);
      if (!ra.is_signed(s.op))
        EXPECT_FALSE(s.negated);
      else
        (s.negated ? negated : positive)++;
    }
    repeats += ops.size() < steps.size();
  }
  for (size_t i = 0; i < counts.size(); ++i) {
    EXPECT_GT(counts[i], 40) << ra.op_names()[i];  // 1200 draws / 15 = 80 expected
    EXPECT_LT(counts[i], 130) << ra.op_names()[i];
  }
  EXPECT_GT(repeats, 0) << "ops are drawn with replacement";
  EXPECT_GT(negated, 200);
  EXPECT_GT(positive, 200);
}

TEST(RandAugment, FixMatchLevelsAreWholeNumbersOneToNine) {
  const RandAugment ra(options("fixmatch"), cv::Scalar(0));
  std::set<double> levels;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    cv::Mat image = test_image(5, 5, 3);
    Rng rng(seed);
    std::vector<RandAugmentStep> steps;
    ra.apply(image, rng, &steps);
    ASSERT_EQ(steps.size(), 2u);
    for (const RandAugmentStep& s : steps) levels.insert(s.level);
  }
  EXPECT_EQ(levels, (std::set<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(RandAugment, EveryOpKeepsSizeAndTypeOfGrayAndColourImages) {
  for (const char* variant : {"reference", "fixmatch"}) {
    const RandAugment ra(options(variant), cv::Scalar(90, 100, 110));
    for (int channels : {1, 3}) {
      const cv::Mat image = test_image(5, 7, channels);
      for (int op = 0; op < static_cast<int>(ra.op_names().size()); ++op)
        for (double level : {0.0, 3.3, 7.0, 9.0})
          for (bool negated : {false, true}) {
            cv::Mat out = image.clone();
            ra.apply_op(out, op, level, negated);
            EXPECT_EQ(out.size(), image.size()) << variant << " " << ra.op_names()[op];
            EXPECT_EQ(out.type(), image.type()) << variant << " " << ra.op_names()[op];
          }
      for (uint64_t seed = 0; seed < 20; ++seed) {
        cv::Mat out = image.clone();
        Rng rng(seed);
        ra.apply(out, rng);
        EXPECT_EQ(out.size(), image.size());
        EXPECT_EQ(out.type(), image.type());
      }
    }
  }
}

TEST(RandAugment, GeometricOpsFillWithTheGivenColour) {
  const RandAugment ra(options("reference"), cv::Scalar(77, 88, 99));
  cv::Mat image(4, 10, CV_8UC3, cv::Scalar(0, 0, 0));
  ra.apply_op(image, ra.op_index("TranslateX"), 10, false);  // 4.5 pixels to the left
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x <= 2; ++x) EXPECT_EQ(image.at<cv::Vec3b>(y, x), cv::Vec3b(0, 0, 0));
    for (int x = 7; x < 10; ++x) EXPECT_EQ(image.at<cv::Vec3b>(y, x), cv::Vec3b(77, 88, 99));
  }
}

TEST(RandAugment, BadOptionsThrow) {
  RandAugmentOptions o;
  o.prob = 1.5;
  EXPECT_THROW((void)RandAugment(o, cv::Scalar(0)), Error);
  o = RandAugmentOptions{};
  o.variant = "autoaugment";
  EXPECT_THROW((void)RandAugment(o, cv::Scalar(0)), Error);
  o = RandAugmentOptions{};
  o.variant = "fixmatch";
  o.max_level = 9.5;
  EXPECT_THROW((void)RandAugment(o, cv::Scalar(0)), Error);
}

RandAugmentOptions from_toml(const std::string& toml) {
  const Config config = Config::from_string(toml, "ra.toml");
  return read_options<RandAugmentOptions>(config.section("data.augment.randaugment"));
}

std::string randaugment_error_of(const std::string& body) {
  try {
    from_toml("[data.augment.randaugment]\n" + body);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(RandAugment, ConfigDefaultsDependOnTheVariant) {
  const RandAugmentOptions reference = from_toml("");
  EXPECT_EQ(reference.variant, "reference");
  EXPECT_EQ(reference.ops(), 3);
  EXPECT_EQ(reference.level(), 7);
  EXPECT_EQ(reference.level_std(), 0.5);
  EXPECT_EQ(reference.max_level, 10);
  EXPECT_EQ(reference.prob, 0.5);
  EXPECT_EQ(from_toml("[data.augment.randaugment]\nvariant = \"fixmatch\"\n").ops(), 2);
  EXPECT_EQ(from_toml("[data.augment.randaugment]\nvariant = \"fixmatch\"\nnum_ops = 4\n").ops(), 4);
  const RandAugmentOptions set = from_toml(
      "[data.augment.randaugment]\nnum_ops = 1\nmagnitude = 9\n"
      "magnitude_std = 0\nmax_level = 30\nprob = 1\n");
  EXPECT_EQ(set.ops(), 1);
  EXPECT_EQ(set.level(), 9);
  EXPECT_EQ(set.level_std(), 0);
  EXPECT_EQ(set.max_level, 30);
  EXPECT_EQ(set.prob, 1);
}

// The resolved config names the variant's defaults, and loads again to the same
// options: "fixmatch" gets no magnitude (which it would refuse).
TEST(RandAugment, ResolvedConfigHoldsTheVariantsDefaultsAndLoadsAgain) {
  for (const std::string variant : {"reference", "fixmatch"}) {
    SCOPED_TRACE(variant);
    const Config config = Config::from_string("[data.augment.randaugment]\nvariant = \"" + variant + "\"\n", "ra.toml");
    const auto first = read_options<RandAugmentOptions>(config.section("data.augment.randaugment"));
    const std::string resolved = config.to_toml();
    EXPECT_NE(resolved.find(variant == "fixmatch" ? "num_ops = 2" : "num_ops = 3"), std::string::npos) << resolved;
    EXPECT_EQ(resolved.find("magnitude") == std::string::npos, variant == "fixmatch") << resolved;
    const Config again = Config::from_string(resolved, "resolved.toml");
    const auto second = read_options<RandAugmentOptions>(again.section("data.augment.randaugment"));
    EXPECT_NO_THROW(again.ensure_all_used());
    EXPECT_EQ(second.ops(), first.ops());
    EXPECT_EQ(second.level(), first.level());
    EXPECT_EQ(second.level_std(), first.level_std());
    EXPECT_EQ(second.max_level, first.max_level);
    EXPECT_EQ(second.prob, first.prob);
  }
}

TEST(RandAugment, ConfigErrorsNameTheKey) {
  const std::string prefix = "data.augment.randaugment.";
  auto names = [&](const std::string& body, const std::string& key) {
    const std::string error = randaugment_error_of(body);
    return error.find(prefix + key) != std::string::npos ? ::testing::AssertionSuccess()
                                                         : ::testing::AssertionFailure() << error;
  };
  EXPECT_TRUE(names("variant = \"magic\"\n", "variant"));
  EXPECT_TRUE(names("num_ops = 0\n", "num_ops"));
  EXPECT_TRUE(names("prob = 1.5\n", "prob"));
  EXPECT_TRUE(names("magnitude = 11\n", "magnitude"));
  EXPECT_EQ(randaugment_error_of("magnitude = 20\nmax_level = 30\n"), "no error");
  EXPECT_TRUE(names("magnitude_std = -1\n", "magnitude_std"));
  EXPECT_TRUE(names("max_level = 0\n", "max_level"));
  EXPECT_TRUE(names("variant = \"fixmatch\"\nmagnitude = 5\n", "magnitude"));
  EXPECT_TRUE(names("variant = \"fixmatch\"\nmax_level = 2.5\n", "max_level"));
  EXPECT_TRUE(names("num_ops = \"two\"\n", "num_ops"));
  EXPECT_EQ(randaugment_error_of("variant = \"fixmatch\"\nprob = 1\nmax_level = 5\n"), "no error");
}

}  // namespace
}  // namespace sscl
