// Domain-incremental sequences (data.scenario = "domain-il"): every task has
// every class, the input distribution changes from task to task. The domains are
// either copies of one dataset under a transform per task (data.domain.kind):
//   rotated   task t rotated by data.domain.rotations[t] degrees, or by
//             t * 180 / num_tasks when the list is empty (Rotated MNIST);
//   permuted  task t's pixels shuffled by a permutation seeded by (seed, t),
//             every task including the first (Permuted MNIST);
// or the dataset's own domains (image_folder_domains: root/<domain>/<class>/*).
// The copies are made once at load (num_tasks x the dataset in memory).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/options.h"
#include "datasets/image_dataset.h"

namespace sscl {

struct DomainOptions {
  std::string kind = "none";      // none | rotated | permuted
  std::vector<double> rotations;  // degrees of each task; []: evenly spaced in [0, 180)
  // data.domain.kind, data.domain.rotations.
  static void declare(OptionSpec<DomainOptions>& o);
};

// The angle of each of `domains` tasks. ConfigError when rotations has another length.
std::vector<double> rotation_angles(const DomainOptions& options, int domains);

// `domains` copies of `data` (training and test images alike) under the kind's
// transform, concatenated, with DatasetSplits::domains set. The name becomes
// "rotated_<name>" or "permuted_<name>".
DatasetSplits transformed_domains(const DatasetSplits& data, const DomainOptions& options, int domains, uint64_t seed);

}  // namespace sscl
