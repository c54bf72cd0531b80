// One column of a progressive network (Rusu et al. 2016, "Progressive Neural
// Networks") and its non-linear lateral adapters.
//
// Column k is a backbone split into stages (core/nn/staged_backbone.h) h_0..h_{S-1}
// plus, for k > 0, one adapter per stage output a = 0..S-1. Adapter a carries the
// earlier columns' stage-a outputs into what follows stage a of column k:
//
//   input of stage a+1:  h_a^(k) + A_a^(k)(h_a^(<k))       (a < S-1)
//   input of the head:   h_{S-1}^(k) + A_{S-1}^(k)(h_{S-1}^(<k))
//   A(h^(<k)) = U relu(V (alpha * h^(<k)) + b_V)           (the paper's Eq. 2 adapter)
//
// h^(<k) = [h^(0) .. h^(k-1)] concatenated along channels (k*c of them); alpha is a
// learned scalar drawn from U(0, alpha_init); V projects the k*c channels onto c
// (with a bias), U maps c to c (without: the stage's own first layer has one).
// On maps V and U are 1x1 convolutions, on vectors linear layers (the same maths).
// The paper adds U relu(...) to the pre-activation of layer i: W h^(k) + U' a. We
// add it to the stage's input instead, so that any stage (a residual layer, a
// conv-BN-pool block) takes it unchanged; when the stage starts with a linear map W
// (every backbone here) this is the paper's form with U' = W U.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include <memory>
#include <vector>

#include "core/nn/backbone.h"
#include "core/nn/staged_backbone.h"

namespace sscl {

// A(h^(<k)) above for one stage output of `channels` channels, fed by
// `earlier_columns` columns.
class LateralAdapterImpl : public torch::nn::Module {
 public:
  LateralAdapterImpl(int64_t earlier_columns, int64_t channels, double alpha_init);

  // `earlier`: one [N, channels(, H, W)] activation per earlier column, in order.
  torch::Tensor forward(const std::vector<torch::Tensor>& earlier);

  torch::Tensor alpha;     // scalar
  torch::Tensor v_weight;  // [channels, earlier_columns * channels]
  torch::Tensor v_bias;    // [channels]
  torch::Tensor u_weight;  // [channels, channels]
};
TORCH_MODULE(LateralAdapter);

// Stage outputs of one column on a batch; the last one is the column's features.
using ColumnActivations = std::vector<torch::Tensor>;

class PnnColumnImpl : public torch::nn::Module {
 public:
  // `backbone` must have stages (throws ConfigError naming model.backbone
  // otherwise). `earlier_columns` = k: the columns before this one, each with the
  // same architecture. `head_classes` > 0 gives the column a Linear head over that
  // many classes; 0 leaves the head to the caller (column 0 uses the model's).
  PnnColumnImpl(std::shared_ptr<Backbone> backbone, int64_t earlier_columns, int64_t head_classes, double alpha_init);

  struct Output {
    ColumnActivations stages;  // h_0..h_{S-1} of this column
    torch::Tensor head_input;  // h_{S-1} plus the lateral into the head
  };
  // `earlier[j]`: the activations of column j < k on the same images.
  Output forward(const torch::Tensor& images, const std::vector<ColumnActivations>& earlier);

  Backbone& backbone() { return *backbone_; }
  int64_t earlier_columns() const { return earlier_columns_; }
  int64_t num_stages() const { return staged_->num_stages(); }
  // Adapter a (a = 0..S-1, only when earlier_columns() > 0).
  LateralAdapter adapter(int64_t a) const { return adapters_.at(static_cast<size_t>(a)); }
  bool has_head() const { return static_cast<bool>(head_); }
  torch::nn::Linear& head() { return head_; }

 private:
  std::shared_ptr<Backbone> backbone_;
  StagedBackbone* staged_ = nullptr;
  int64_t earlier_columns_;
  torch::nn::ModuleList adapter_list_{nullptr};  // registers the adapters
  std::vector<LateralAdapter> adapters_;         // the same, typed
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(PnnColumn);

}  // namespace sscl
