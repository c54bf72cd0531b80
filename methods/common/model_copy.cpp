#include "methods/common/model_copy.h"

#include <torch/torch.h>

#include "core/error.h"

namespace sscl {

Classifier trainable_copy(Classifier& model, const MethodContext& context) {
  check<Error>(static_cast<bool>(context.make_backbone), "model copy: the method context has no backbone factory");
  auto backbone = context.make_backbone();
  Classifier copy = model->multi_head() ? Classifier(backbone, model->num_classes(), context.task_classes)
                                        : Classifier(backbone, model->num_classes());
  copy->to(context.device);
  torch::NoGradGuard no_grad;
  const auto source_params = model->named_parameters(true);
  for (auto& item : copy->named_parameters(true)) item.value().copy_(source_params[item.key()]);
  const auto source_buffers = model->named_buffers(true);
  for (auto& item : copy->named_buffers(true)) item.value().copy_(source_buffers[item.key()]);
  copy->train();
  return copy;
}

Classifier frozen_copy(Classifier& model, const MethodContext& context) {
  Classifier copy = trainable_copy(model, context);
  for (auto& p : copy->parameters()) p.set_requires_grad(false);
  copy->eval();
  return copy;
}

}  // namespace sscl
