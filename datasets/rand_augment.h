// RandAugment for the strong view (Cutout is the caller's, not part of it).
// Ops are datasets/augment_ops.h; all randomness comes from the Rng passed in.
//
// variant "reference": the reference's mmcls RandAugment over timm's
// _RAND_INCREASING_TRANSFORMS (timm "rand-m7-n3-mstd0.5-inc1", bicubic, fill =
// dataset mean). For each of num_ops: an op drawn uniformly WITH replacement
// from the 15 below; applied with probability `prob`; if applied, its level is
// magnitude + magnitude_std * N(0, 1) clipped to [0, max_level], t = level /
// max_level, and "+-" is a sign drawn with probability 0.5:
//   AutoContrast, Equalize, Invert          (no argument)
//   Rotate                                  +-30 t degrees
//   Posterize                               4 - int(4 t) bits             (4..0)
//   Solarize                                threshold 256 - int(256 t)    (256..0)
//   SolarizeAdd                             + int(110 t) below 128        (0..110)
//   Color, Contrast, Brightness, Sharpness  factor 1 +- 0.9 t             (0.1..1.9)
//   ShearX, ShearY                          +-0.3 t
//   TranslateX, TranslateY (timm's ...Rel)  +-0.45 t of the width / height (fractional pixels)
// Level 7 of 10 thus gives 21 degrees, 2 bits, threshold 77, +77, factor
// 1.63 or 0.37, shear 0.21, translate 0.315. (mmcls maps levels without int();
// on uint8 pixels ceil/fractional thresholds and adds give the same images.)
//
// variant "fixmatch": FixMatch's RandAugment as in kekmodel/FixMatch-pytorch
// (RandAugmentMC(n=2, m=10) over fixmatch_augment_pool). For each of num_ops:
// an op drawn uniformly WITH replacement from the 14 below, an integer level v
// uniform in [1, max_level - 1] (1..9), then applied with probability `prob`;
// arguments are computed as kekmodel does, v * range / max_level:
//   AutoContrast, Equalize, Identity        (no argument)
//   Brightness, Color, Contrast, Sharpness  factor 0.05 + 0.9 v/10      (0.14..0.86, no sign)
//   Posterize                               int(4 v/10) + 4 bits         (4..7)
//   Rotate                                  +-int(30 v/10) degrees
//   ShearX, ShearY                          +-0.3 v/10
//   Solarize                                threshold 256 - int(256 v/10)
//   TranslateX, TranslateY                  +-0.3 v/10 of the size, truncated to whole pixels
// magnitude and magnitude_std do not apply. Deviation: kekmodel's geometric
// ops use PIL's defaults (nearest, black fill); here they are bicubic with
// `fill`, as in the reference variant.
#pragma once

#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/options.h"
#include "core/random.h"

namespace sscl {

struct RandAugmentOptions {
  std::string variant = "reference";  // "reference" | "fixmatch"
  // Unset: the variant's default (ops(), level(), level_std()). Kept unset rather
  // than filled in so that "fixmatch", which has no magnitude, never gets one.
  std::optional<int> num_ops;           // ops per image: 3, or 2 with variant "fixmatch"
  std::optional<double> magnitude;      // level, of max_level: 7 ("reference" only)
  std::optional<double> magnitude_std;  // gaussian noise on the level per op, clipped to [0, max_level]: 0.5
                                        // ("reference" only)
  double max_level = 10;                // "fixmatch": an integer >= 2, levels are 1..max_level-1
  double prob = 0.5;                    // each chosen op applied with this probability

  // The values in effect: those set, else the variant's defaults.
  int ops() const { return num_ops.value_or(variant == "fixmatch" ? 2 : 3); }
  double level() const { return magnitude.value_or(7); }
  double level_std() const { return magnitude_std.value_or(0.5); }

  // data.augment.randaugment.*; "fixmatch" rejects magnitude / magnitude_std.
  // Errors are ConfigErrors naming the key.
  static void declare(OptionSpec<RandAugmentOptions>& o);
};

// One draw of apply(); level and negated are meaningful when applied (for
// "fixmatch" the level is drawn either way, as kekmodel does).
struct RandAugmentStep {
  int op = 0;  // index into op_names()
  bool applied = false;
  double level = 0;
  bool negated = false;
};

enum class AugmentKind : int;  // defined in rand_augment.cpp

class RandAugment {
 public:
  // fill: per channel, used by the geometric ops. Throws Error on bad options.
  RandAugment(RandAugmentOptions options, cv::Scalar fill);

  // In place (reassigns the Mat); same size and type. `steps`, when given,
  // receives the num_ops draws in order.
  void apply(cv::Mat& image, Rng& rng, std::vector<RandAugmentStep>* steps = nullptr) const;

  // The variant's op pool, in the order above; -1 for a name not in it.
  const std::vector<std::string>& op_names() const { return names_; }
  int op_index(const std::string& name) const;
  // The argument op `op` gets at `level`: degrees, bits, threshold, add,
  // factor, shear, or translate as a fraction of the size; 0 for no argument.
  double argument(int op, double level, bool negated) const;
  // Applies op `op` at `level` deterministically.
  void apply_op(cv::Mat& image, int op, double level, bool negated) const;
  // Whether the op's argument takes a random sign.
  bool is_signed(int op) const;

  const RandAugmentOptions& options() const { return options_; }

 private:
  RandAugmentOptions options_;
  cv::Scalar fill_;
  bool fixmatch_;
  std::vector<std::string> names_;
  std::vector<AugmentKind> kinds_;
};

}  // namespace sscl
