#include "methods/common/model_copy.h"

#include <torch/torch.h>

#include "core/error.h"
#include "methods/common/scoped_torch_seed.h"

namespace sscl {

Classifier fresh_classifier(const Classifier& like, const MethodContext& context) {
  check<Error>(static_cast<bool>(context.make_backbone), "model copy: the method context has no backbone factory");
  auto backbone = context.make_backbone();
  Classifier fresh = like->multi_head() ? Classifier(backbone, like->num_classes(), context.task_classes)
                                        : Classifier(backbone, like->num_classes());
  fresh->to(context.device);
  return fresh;
}

Classifier seeded_fresh_classifier(const Classifier& like, const MethodContext& context, uint64_t seed) {
  ScopedTorchSeed seeded(seed);  // backbones are built, hence initialised, on the CPU
  return fresh_classifier(like, context);
}

void copy_parameters_and_buffers(Classifier& into, const Classifier& from) {
  torch::NoGradGuard no_grad;
  const auto params = from->named_parameters(true);
  for (auto& item : into->named_parameters(true)) item.value().copy_(params[item.key()]);
  const auto buffers = from->named_buffers(true);
  for (auto& item : into->named_buffers(true)) item.value().copy_(buffers[item.key()]);
}

Classifier trainable_copy(Classifier& model, const MethodContext& context) {
  Classifier copy = fresh_classifier(model, context);
  copy_parameters_and_buffers(copy, model);
  copy->freeze(model->frozen_modules());  // a frozen part stays frozen in the copy (QBC's committee)
  copy->train();
  return copy;
}

Classifier frozen_copy(Classifier& model, const MethodContext& context) {
  Classifier copy = trainable_copy(model, context);
  for (auto& p : copy->parameters()) p.set_requires_grad(false);
  copy->eval();
  return copy;
}

double copy_bytes(const Classifier& copy) {
  double bytes = 0;
  if (!copy) return bytes;
  for (const auto& p : copy->parameters()) bytes += static_cast<double>(p.nbytes());
  for (const auto& b : copy->buffers()) bytes += static_cast<double>(b.nbytes());
  return bytes;
}

}  // namespace sscl
