// Edge-cloud collaborative inference: which test images the edge model sends to
// the cloud model (hard-example mining). Each image's hardness comes from the
// edge model's softmax probabilities p over its classes:
//   entropy:THR     upload when H(p) = -sum p log p (nats) > THR
//   margin:THR      upload when p_top1 - p_top2 < THR
//   confidence:THR  upload when p_top1 < THR
// `KIND:sweep` varies the threshold instead (route_sweep below).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace sscl {

enum class RouteKind { kEntropy, kMargin, kConfidence };

struct Route {
  RouteKind kind = RouteKind::kEntropy;
  double threshold = 0;
  bool sweep = false;
};

// "entropy:0.5", "margin:0.1", "confidence:0.9", "margin:sweep". ConfigError
// naming `option` and the text otherwise (confidence and margin thresholds lie in
// [0, 1], an entropy threshold is >= 0).
Route parse_route(const std::string& text, const std::string& option = "--route");
std::string route_kind_name(RouteKind kind);
std::string route_text(const Route& route);

// Per row of `probabilities` [N, C] (rows sum to 1; zero entries, such as the
// classes outside a multi-head model's task, count as impossible): the hardness
// of the row in the kind's own units, larger meaning harder, so that an image is
// uploaded when its hardness is above hardness_cut(route).
at::Tensor hardness(RouteKind kind, const at::Tensor& probabilities);
double hardness_cut(const Route& route);
// Inverse of hardness_cut: the route's threshold for a cut.
double threshold_of_cut(RouteKind kind, double cut);

// Bool [N]: which rows go to the cloud.
at::Tensor upload_mask(const Route& route, const at::Tensor& probabilities);

struct SweepPoint {
  double threshold = 0;     // in the route kind's units
  double upload_share = 0;  // of the images, in [0, 1]
  double accuracy = 0;      // percent, with the cloud's answer for the uploaded images
};

// The accuracy against upload-share curve: `steps` + 1 thresholds, from sending
// nothing to sending every image, placed at quantiles of the edge hardness.
// `edge_correct` / `cloud_correct`: bool [N], whether each model is right on
// each image. The upload share never decreases along the curve.
std::vector<SweepPoint> route_sweep(RouteKind kind, const at::Tensor& probabilities, const at::Tensor& edge_correct,
                                    const at::Tensor& cloud_correct, int steps = 20);

}  // namespace sscl
