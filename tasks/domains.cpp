#include "tasks/domains.h"

#include <ATen/ATen.h>

#include <numeric>
#include <opencv2/core.hpp>

#include "core/error.h"
#include "core/random.h"
#include "datasets/transforms.h"

namespace sscl {

void DomainOptions::declare(OptionSpec<DomainOptions>& o) {
  o.key("kind", &DomainOptions::kind,
        "domain-IL: rotated or permuted copies of the dataset, one per task; none: the dataset's own domains (if any)")
      .one_of({"none", "rotated", "permuted"});
  o.key("rotations", &DomainOptions::rotations, "degrees of each task (kind = rotated); []: t * 180 / num_tasks");
}

std::vector<double> rotation_angles(const DomainOptions& options, int domains) {
  if (options.rotations.empty()) {
    std::vector<double> angles;
    for (int t = 0; t < domains; ++t) angles.push_back(180.0 * t / domains);
    return angles;
  }
  if (static_cast<int>(options.rotations.size()) != domains)
    throw ConfigError("data.domain.rotations lists " + std::to_string(options.rotations.size()) +
                      " angles but there are " + std::to_string(domains) + " tasks (data.num_tasks)");
  return options.rotations;
}

namespace {

// The per-domain copies of one split, concatenated; `begins` gets each copy's first id.
std::shared_ptr<const ImageDataset> concatenated(const ImageDataset& d, int domains,
                                                 const std::function<cv::Mat(int, const cv::Mat&)>& op,
                                                 std::vector<int64_t>& begins) {
  const auto shape = d.shape();
  std::vector<at::Tensor> images, labels;
  for (int t = 0; t < domains; ++t) {
    begins.push_back(t * d.size());
    const auto copy = mapped(d, static_cast<int>(shape.height), static_cast<int>(shape.width),
                             [&op, t](const cv::Mat& image) { return op(t, image); });
    images.push_back(copy->images);
    labels.push_back(copy->labels);
  }
  auto out = std::make_shared<ImageDataset>(d);
  out->images = at::cat(images).contiguous();
  out->labels = at::cat(labels).contiguous();
  return out;
}

}  // namespace

DatasetSplits transformed_domains(const DatasetSplits& data, const DomainOptions& options, int domains, uint64_t seed) {
  check<ConfigError>(options.kind == "rotated" || options.kind == "permuted",
                     "data.domain.kind = '" + options.kind + "': expected rotated or permuted");
  if (!data.domains.empty())
    throw ConfigError("data.domain.kind = " + options.kind + ": " + data.name +
                      " has domains of its own; set data.domain.kind = \"none\"");
  std::function<cv::Mat(int, const cv::Mat&)> op;
  const auto angles = options.kind == "rotated" ? rotation_angles(options, domains) : std::vector<double>{};
  if (options.kind == "rotated") {
    op = [angles](int t, const cv::Mat& image) { return rotate(image, angles[t]); };
  } else {
    const auto shape = data.train->shape();
    std::vector<std::vector<int64_t>> orders(domains, std::vector<int64_t>(shape.height * shape.width));
    for (int t = 0; t < domains; ++t) {
      std::iota(orders[t].begin(), orders[t].end(), 0);
      Rng rng(stream_seed(seed, "domain.permutation", t));
      rng.shuffle(orders[t]);
    }
    op = [orders](int t, const cv::Mat& image) { return permute_pixels(image, orders[t]); };
  }
  DatasetSplits out = data;
  out.name = options.kind + "_" + data.name;
  std::vector<int64_t> train_begins, test_begins;
  out.train = concatenated(*data.train, domains, op, train_begins);
  out.test = concatenated(*data.test, domains, op, test_begins);
  for (int t = 0; t < domains; ++t) {
    out.domains.push_back(
        {train_begins[t], train_begins[t] + data.train->size(), test_begins[t], test_begins[t] + data.test->size()});
    out.domain_names.push_back(options.kind == "rotated"
                                   ? options.kind + " " + options_detail::format_number(angles[t]) + " deg"
                                   : "permutation " + std::to_string(t));
  }
  return out;
}

}  // namespace sscl
