#include "tools/inference/routing.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace sscl {
namespace {

// Top-1 and top-2 probabilities per row ([N, 2]); a single class has top-2 0.
at::Tensor top_two(const at::Tensor& probabilities) {
  if (probabilities.size(1) >= 2) return std::get<0>(probabilities.topk(2, 1));
  return at::cat({probabilities, at::zeros_like(probabilities)}, 1);
}

}  // namespace

Route parse_route(const std::string& text, const std::string& option) {
  const auto colon = text.find(':');
  const std::string kind = text.substr(0, colon), value = colon == std::string::npos ? "" : text.substr(colon + 1);
  const auto bad = [&](const std::string& why) {
    return ConfigError(option + " '" + text + "': " + why +
                       " (expected entropy:THRESHOLD, margin:THRESHOLD, confidence:THRESHOLD or KIND:sweep)");
  };
  Route route;
  if (kind == "entropy")
    route.kind = RouteKind::kEntropy;
  else if (kind == "margin")
    route.kind = RouteKind::kMargin;
  else if (kind == "confidence")
    route.kind = RouteKind::kConfidence;
  else
    throw bad("unknown route '" + kind + "'");
  if (value == "sweep") {
    route.sweep = true;
    return route;
  }
  if (value.empty()) throw bad("no threshold");
  char* end = nullptr;
  route.threshold = std::strtod(value.c_str(), &end);
  if (end != value.c_str() + value.size() || !std::isfinite(route.threshold))
    throw bad("'" + value + "' is not a number");
  if (route.kind == RouteKind::kEntropy && route.threshold < 0) throw bad("an entropy threshold is at least 0");
  if (route.kind != RouteKind::kEntropy && (route.threshold < 0 || route.threshold > 1))
    throw bad("a " + kind + " threshold lies in [0, 1]");
  return route;
}

std::string route_kind_name(RouteKind kind) {
  switch (kind) {
    case RouteKind::kEntropy: return "entropy";
    case RouteKind::kMargin: return "margin";
    case RouteKind::kConfidence: return "confidence";
  }
  return "?";
}

std::string route_text(const Route& route) {
  return route_kind_name(route.kind) + ":" + (route.sweep ? std::string("sweep") : std::to_string(route.threshold));
}

at::Tensor hardness(RouteKind kind, const at::Tensor& probabilities) {
  const auto p = probabilities.to(at::kDouble);
  switch (kind) {
    case RouteKind::kEntropy:
      // 0 log 0 = 0: impossible classes add nothing.
      return -(p * p.clamp_min(1e-300).log()).masked_fill(p.eq(0), 0).sum(1);
    case RouteKind::kMargin: {
      const auto top = top_two(p);
      return top.select(1, 1) - top.select(1, 0);  // -(p1 - p2)
    }
    case RouteKind::kConfidence: return -std::get<0>(p.max(1));
  }
  return {};
}

double hardness_cut(const Route& route) {
  return route.kind == RouteKind::kEntropy ? route.threshold : -route.threshold;
}

double threshold_of_cut(RouteKind kind, double cut) { return kind == RouteKind::kEntropy ? cut : -cut; }

at::Tensor upload_mask(const Route& route, const at::Tensor& probabilities) {
  check<Error>(!route.sweep, "upload_mask: a sweep has no single threshold");
  return hardness(route.kind, probabilities).gt(hardness_cut(route));
}

std::vector<SweepPoint> route_sweep(RouteKind kind, const at::Tensor& probabilities, const at::Tensor& edge_correct,
                                    const at::Tensor& cloud_correct, int steps) {
  const auto h = hardness(kind, probabilities);
  const int64_t n = h.size(0);
  check<Error>(n > 0 && steps > 0, "route_sweep: no images or no steps");
  const auto sorted = std::get<0>(h.sort(/*dim=*/0, /*descending=*/true));
  const auto* hard = sorted.data_ptr<double>();
  std::vector<SweepPoint> points;
  for (int s = 0; s <= steps; ++s) {
    // Aim at k uploads: cut at the (k+1)-th hardest; ties send fewer.
    const int64_t k = (n * s + steps / 2) / steps;
    const double cut = k < n ? hard[k] : hard[n - 1] - 1.0;
    const auto upload = h.gt(cut);
    const auto correct = at::where(upload, cloud_correct, edge_correct);
    SweepPoint point;
    point.threshold = threshold_of_cut(kind, cut);
    point.upload_share = upload.sum().item<double>() / n;
    point.accuracy = 100.0 * correct.sum().item<double>() / n;
    points.push_back(point);
  }
  return points;
}

}  // namespace sscl
