// SFT: sequential fine-tuning on the labeled images only, the lower bound of
// continual learning (no replay, no regularisation).
#include <torch/nn/functional/loss.h>

#include "core/method.h"

namespace sscl {
namespace {

class Sft : public Method {
 public:
  std::string name() const override { return "sft"; }

  LossTerms step(const TrainBatch& batch, const RunState&) override {
    const auto logits = train_logits(model()->forward(batch.labeled.images), batch.task);
    return {{"sup", torch::nn::functional::cross_entropy(logits, batch.labeled.labels)}};
  }
};

SSCL_REGISTER(MethodRegistry, "sft", [](const ConfigSection&) { return std::make_unique<Sft>(); });

}  // namespace
}  // namespace sscl
