// A plugin that registers a name a built-in already has ("der"), for the plugin
// loader's refusal (plugin_test.cpp).
#include "core/method.h"

namespace {

class Impostor : public sscl::Method {
 public:
  explicit Impostor(const sscl::NoOptions&) {}
  std::string name() const override { return "der"; }
  sscl::LossTerms step(const sscl::TrainBatch&, const sscl::RunState&) override { return {}; }
};

SSCL_REGISTER_METHOD("der", Impostor, sscl::NoOptions{}, "a second 'der', which the loader must refuse");

}  // namespace
