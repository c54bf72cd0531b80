#include "core/semi_loss.h"

#include <torch/nn/functional/loss.h>

#include "core/error.h"
#include "core/method.h"

namespace sscl {

SSCL_DEFINE_REGISTRY(SemiLossRegistry, "semi-supervised loss", "method.<loss>")

at::Tensor cross_entropy_loss(const at::Tensor& logits, const at::Tensor& labels) {
  return torch::nn::functional::cross_entropy(logits, labels);
}

Method& SemiLoss::method() const {
  check<Error>(method_ != nullptr, "semi-supervised loss '" + name() + "' is not attached to a method");
  return *method_;
}

}  // namespace sscl
