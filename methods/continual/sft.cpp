#include "methods/continual/sft.h"

namespace sscl {
namespace {

class Sft : public Method {
 public:
  Sft() {
    traits_.composes_with_semi = true;
    traits_.distributed = true;  // no state of its own
  }
  std::string name() const override { return "sft"; }
  LossTerms step(const TrainBatch& batch, const RunState& state) override {
    return forward_current(batch, state).terms;
  }
};

SSCL_REGISTER_OPTIONS(MethodRegistry, "sft", "SFT: fine-tuning on each task's labeled images (the lower bound)",
                      NoOptions{}, [](const NoOptions&) { return make_sft(); });

}  // namespace

std::unique_ptr<Method> make_sft() { return std::make_unique<Sft>(); }

}  // namespace sscl
