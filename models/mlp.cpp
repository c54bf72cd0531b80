// The MLP baseline of continual-learning papers on the MNIST family (GEM, DER,
// ...; mammoth's MNISTMLP): flatten the image, then model.hidden_layers (default
// 2) Linear + ReLU layers of model.hidden (default 100) units; the features are
// the last hidden layer. The input size is channels * height * width of the
// dataset (784 for 28x28x1). Weights are Xavier-uniform and biases zero, as
// mammoth initialises MNISTMLP. Stages (core/nn/staged_backbone.h): one per
// hidden layer.
#include <torch/nn/init.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include <string>
#include <vector>

#include "core/nn/backbone.h"
#include "core/nn/staged_backbone.h"

namespace sscl {
namespace {

namespace nn = torch::nn;

class Mlp : public Backbone, public StagedBackbone {
 public:
  Mlp(const InputShape& shape, int64_t hidden_layers, int64_t hidden) : hidden_(hidden) {
    layers_ = register_module("layers", nn::ModuleList());
    int64_t in = shape.channels * shape.height * shape.width;
    check<ConfigError>(in > 0, "mlp needs a non-empty input shape");
    for (int64_t i = 0; i < hidden_layers; ++i) {
      nn::Linear fc(in, hidden);
      nn::init::xavier_uniform_(fc->weight);
      nn::init::zeros_(fc->bias);
      layers_->push_back(fc);
      linears_.push_back(fc);
      in = hidden;
    }
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    auto x = images;
    for (int64_t s = 0; s < num_stages(); ++s) x = forward_stage(s, x);
    return x;
  }

  int64_t feature_dim() const override { return hidden_; }

  int64_t num_stages() const override { return static_cast<int64_t>(linears_.size()); }

  torch::Tensor forward_stage(int64_t stage, const torch::Tensor& input) override {
    check<Error>(stage >= 0 && stage < num_stages(), "mlp has no stage " + std::to_string(stage));
    return torch::relu(linears_[stage](stage == 0 ? input.flatten(1) : input));
  }

  StageShape stage_shape(int64_t) const override { return {hidden_, false}; }

  // No stem: stage 0 is the first hidden layer.
  std::vector<std::vector<std::string>> stage_modules() const override {
    std::vector<std::vector<std::string>> stages;
    for (size_t i = 0; i < linears_.size(); ++i) stages.push_back({"layers." + std::to_string(i)});
    return stages;
  }

 private:
  int64_t hidden_;
  nn::ModuleList layers_{nullptr};   // registers the layers ("layers.0", ...)
  std::vector<nn::Linear> linears_;  // the same layers, typed
};

struct MlpOptions {
  int64_t hidden_layers = 2;
  int64_t hidden = 100;
  static void declare(OptionSpec<MlpOptions>& o) {
    o.key("hidden_layers", &MlpOptions::hidden_layers, "Linear + ReLU layers").above(0);
    o.key("hidden", &MlpOptions::hidden, "units of every hidden layer (the features)").above(0);
  }
};

SSCL_REGISTER_OPTIONS(BackboneRegistry, "mlp",
                      "MLP: the MNIST-family baseline of GEM and DER (mammoth's MNISTMLP), ReLU layers, Xavier init",
                      MlpOptions{}, [](const MlpOptions& o, const InputShape& shape) {
                        return std::make_shared<Mlp>(shape, o.hidden_layers, o.hidden);
                      });

}  // namespace
}  // namespace sscl
