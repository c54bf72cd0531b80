#include "core/nn/classifier.h"

namespace sscl {

SSCL_DEFINE_REGISTRY(BackboneRegistry, "backbone")

ClassifierImpl::ClassifierImpl(std::shared_ptr<Backbone> backbone, int64_t num_classes)
    : backbone_(register_module("backbone", std::move(backbone))), num_classes_(num_classes) {
  head_ = register_module("head", torch::nn::Linear(backbone_->feature_dim(), num_classes));
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& images) { return head_(backbone_->forward(images)); }

torch::Tensor ClassifierImpl::features(const torch::Tensor& images) { return backbone_->forward(images); }

torch::Tensor ClassifierImpl::head(const torch::Tensor& features) { return head_(features); }

}  // namespace sscl
