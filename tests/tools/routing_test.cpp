// Edge-cloud routing (tools/inference/routing.h) on hand-made probabilities.
#include "tools/inference/routing.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"

namespace sscl {
namespace {

// Rows: confident, a tie between two classes, spread over three.
torch::Tensor probabilities() {
  return torch::tensor({0.9, 0.1, 0.0, 0.5, 0.5, 0.0, 0.4, 0.35, 0.25}, torch::kDouble).reshape({3, 3});
}

std::vector<bool> uploads(const std::string& route) {
  const auto mask = upload_mask(parse_route(route), probabilities());
  return {mask[0].item<bool>(), mask[1].item<bool>(), mask[2].item<bool>()};
}

TEST(Routing, HardnessInTheKindsOwnUnits) {
  // Entropy in nats, 0 log 0 = 0: 0.9 ln(1/0.9) + 0.1 ln 10; ln 2; and the three-way split.
  const auto entropy = hardness(RouteKind::kEntropy, probabilities());
  EXPECT_NEAR(entropy[0].item<double>(), 0.325083, 1e-6);
  EXPECT_NEAR(entropy[1].item<double>(), 0.693147, 1e-6);
  EXPECT_NEAR(entropy[2].item<double>(), 1.080528, 1e-6);
  // Margin and confidence are negated, so that larger is harder.
  const auto margin = hardness(RouteKind::kMargin, probabilities());
  EXPECT_NEAR(margin[0].item<double>(), -0.8, 1e-12);
  EXPECT_NEAR(margin[1].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(margin[2].item<double>(), -0.05, 1e-12);
  const auto confidence = hardness(RouteKind::kConfidence, probabilities());
  EXPECT_NEAR(confidence[0].item<double>(), -0.9, 1e-12);
  EXPECT_NEAR(confidence[2].item<double>(), -0.4, 1e-12);
}

TEST(Routing, UploadDecisions) {
  EXPECT_EQ(uploads("entropy:0.5"), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(uploads("entropy:0.7"), (std::vector<bool>{false, false, true}));
  EXPECT_EQ(uploads("margin:0.1"), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(uploads("margin:0.01"), (std::vector<bool>{false, true, false}));
  EXPECT_EQ(uploads("confidence:0.45"), (std::vector<bool>{false, false, true}));
  EXPECT_EQ(uploads("confidence:0.95"), (std::vector<bool>{true, true, true}));
  EXPECT_EQ(uploads("confidence:0"), (std::vector<bool>{false, false, false}));
}

TEST(Routing, BadRoutesNameTheOptionAndText) {
  for (const char* text :
       {"foo:1", "entropy", "entropy:", "margin:1.5", "confidence:abc", "entropy:-1", "margin:nan"}) {
    try {
      parse_route(text);
      ADD_FAILURE() << text << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("--route '") + text + "'"), std::string::npos) << e.what();
    }
  }
  const Route sweep = parse_route("margin:sweep");
  EXPECT_TRUE(sweep.sweep);
  EXPECT_EQ(sweep.kind, RouteKind::kMargin);
  EXPECT_THROW(upload_mask(sweep, probabilities()), Error);
}

// Random rows: the sweep starts with the edge alone, ends with the cloud alone,
// its upload share never falls, and each point's accuracy is that of its mask.
TEST(Routing, SweepGoesFromEdgeToCloudWithAnUploadShareThatNeverFalls) {
  torch::manual_seed(3);
  const int64_t n = 101;
  const auto p = torch::softmax(torch::randn({n, 4}, torch::kDouble) * 2, 1);
  const auto edge_correct = torch::rand({n}) < 0.6, cloud_correct = torch::rand({n}) < 0.9;
  for (RouteKind kind : {RouteKind::kEntropy, RouteKind::kMargin, RouteKind::kConfidence}) {
    const auto points = route_sweep(kind, p, edge_correct, cloud_correct, 10);
    ASSERT_EQ(points.size(), 11u);
    EXPECT_EQ(points.front().upload_share, 0.0);
    EXPECT_DOUBLE_EQ(points.front().accuracy, 100.0 * edge_correct.sum().item<double>() / n);
    EXPECT_EQ(points.back().upload_share, 1.0);
    EXPECT_DOUBLE_EQ(points.back().accuracy, 100.0 * cloud_correct.sum().item<double>() / n);
    for (size_t i = 1; i < points.size(); ++i) EXPECT_GE(points[i].upload_share, points[i - 1].upload_share);
    for (const SweepPoint& point : points) {
      Route route;
      route.kind = kind;
      route.threshold = point.threshold;
      const auto mask = upload_mask(route, p);
      EXPECT_DOUBLE_EQ(point.upload_share, mask.sum().item<double>() / n) << route_text(route);
      const auto correct = torch::where(mask, cloud_correct, edge_correct);
      EXPECT_DOUBLE_EQ(point.accuracy, 100.0 * correct.sum().item<double>() / n) << route_text(route);
    }
    // Distinct hardness values: each step sends about a tenth more.
    EXPECT_NEAR(points[5].upload_share, 0.5, 0.011);
  }
}

}  // namespace
}  // namespace sscl
