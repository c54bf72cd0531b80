// SFT: sequential fine-tuning on the labeled images only, the lower bound of
// continual learning (no replay, no regularisation). With method.semi it is the
// semi-supervised loss alone (method.name = "fixmatch" is SFT + FixMatch).
#include "core/method.h"

namespace sscl {
namespace {

class Sft : public Method {
 public:
  std::string name() const override { return "sft"; }
  bool composes_with_semi() const override { return true; }

  LossTerms step(const TrainBatch& batch, const RunState& state) override {
    return forward_current(batch, state).terms;
  }
};

SSCL_REGISTER(MethodRegistry, "sft", [](const ConfigSection&) { return std::make_unique<Sft>(); });

}  // namespace
}  // namespace sscl
