// SFT: sequential fine-tuning on the labeled images only, the lower bound of
// continual learning (no replay, no regularisation). With method.semi it is the
// semi-supervised loss alone: method.name = "fixmatch" is SFT + FixMatch.
#pragma once

#include <memory>

#include "core/method.h"
#include "core/semi_loss.h"

namespace sscl {

std::unique_ptr<Method> make_sft();

// Registers a semi-supervised loss twice: as `name` in SemiLossRegistry (for
// method.semi, its options in [method.<name>]) and as the method `name`, SFT with
// the loss composed (its options in [method]).
#define SSCL_REGISTER_SEMI_LOSS(name, Class, defaults, summary)                                                       \
  SSCL_REGISTER_OPTIONS(::sscl::SemiLossRegistry, name, summary, defaults,                                            \
                        [](const auto& options) { return std::make_unique<Class>(options); });                        \
  SSCL_REGISTER_OPTIONS_IN(::sscl::MethodRegistry, ::sscl::kSemiSupervisedMethods, name,                              \
                           std::string(summary) + " (alone: SFT with this loss)", defaults, [](const auto& options) { \
                             auto method = ::sscl::make_sft();                                                        \
                             method->set_semi(std::make_unique<Class>(options));                                      \
                             return method;                                                                           \
                           })

}  // namespace sscl
