#include "core/semi_loss.h"

#include <torch/nn/functional/loss.h>

#include "core/error.h"
#include "core/method.h"

namespace sscl {

SSCL_DEFINE_REGISTRY(SemiLossRegistry, "semi-supervised loss")

at::Tensor cross_entropy_loss(const at::Tensor& logits, const at::Tensor& labels) {
  return torch::nn::functional::cross_entropy(logits, labels);
}

Method& SemiLoss::method() const {
  check<Error>(method_ != nullptr, "semi-supervised loss '" + name() + "' is not attached to a method");
  return *method_;
}

std::function<std::unique_ptr<Method>(const ConfigSection&)> semi_alone(std::string loss) {
  return [loss](const ConfigSection& section) {
    auto method = MethodRegistry::get().at("sft")(section);
    method->set_semi(SemiLossRegistry::get().at(loss)(section));
    return method;
  };
}

}  // namespace sscl
