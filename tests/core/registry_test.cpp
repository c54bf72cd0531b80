// Every built-in name must be registered in a linked executable: this fails if
// the self-registering object files were dropped by the linker.
#include <gtest/gtest.h>

#include "core/hook_registry.h"
#include "core/method.h"
#include "datasets/image_dataset.h"

namespace sscl {
namespace {

using Names = std::vector<std::string>;

TEST(Registry, EveryBuiltInNameIsRegistered) {
  EXPECT_EQ(
      MethodRegistry::get().names(),
      (Names{"agem",      "ccic",      "der",          "derpp", "edgehml", "er",        "er_ace",       "fixmatch",
             "flexmatch", "freematch", "gdumb",        "icarl", "joint",   "lwf",       "mean_teacher", "mixmatch",
             "oewc",      "pnn",       "pseudo_label", "sft",   "si",      "softmatch", "uda"}));
  EXPECT_EQ(BackboneRegistry::get().names(), (Names{"mlp", "mobilenet_v2", "reduced_resnet18", "resnet18", "resnet34",
                                                    "resnet50", "small_cnn", "wrn28_2"}));
  EXPECT_EQ(DatasetRegistry::get().names(),
            (Names{"cifar10", "cifar100", "fashion_mnist", "image_folder", "tiny_imagenet"}));
  EXPECT_EQ(HookRegistry::get().names(), (Names{"logger", "metrics_jsonl"}));
  EXPECT_EQ(SemiLossRegistry::get().names(), (Names{"fixmatch", "flexmatch", "freematch", "mean_teacher", "mixmatch",
                                                    "pseudo_label", "softmatch", "uda"}));
}

TEST(Registry, UnknownNameListsTheKnownOnes) {
  try {
    MethodRegistry::get().at("fixmach");
    FAIL();
  } catch (const RegistryError& e) {
    EXPECT_STREQ(
        e.what(),
        "unknown method 'fixmach'; known: agem, ccic, der, derpp, edgehml, er, er_ace, fixmatch, flexmatch, freematch, "
        "gdumb, icarl, joint, lwf, mean_teacher, mixmatch, oewc, pnn, pseudo_label, sft, si, softmatch, uda");
  }
}

TEST(Registry, DuplicateNameIsRejected) {
  Registry<int> r("thing");
  r.add("a", 1);
  EXPECT_THROW(r.add("a", 2), RegistryError);
  EXPECT_EQ(r.at("a"), 1);
}

}  // namespace
}  // namespace sscl
