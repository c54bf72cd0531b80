// What the trainer hands a method each iteration. Images are normalised float
// tensors [N, C, H, W] already on the training device. The unlabeled batch carries
// no labels at all: a method cannot peek at ground truth it was not given.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace sscl {

struct LabeledBatch {
  at::Tensor images;   // [B, C, H, W] float
  at::Tensor labels;   // [B] int64, global class ids
  at::Tensor indices;  // [B] int64, image ids in the training set
};

struct UnlabeledBatch {
  at::Tensor weak;     // [U, C, H, W] weak view
  at::Tensor strong;   // [U, C, H, W] strong view of the same images
  at::Tensor indices;  // [U] int64, image ids in the training set
  bool empty() const { return !weak.defined() || weak.size(0) == 0; }
};

struct TrainBatch {
  int task = 0;
  LabeledBatch labeled;
  UnlabeledBatch unlabeled;  // empty for methods that use no unlabeled data
};

// Evaluation images of one task.
struct EvalBatch {
  at::Tensor images;  // [N, C, H, W] float
  at::Tensor labels;  // [N] int64
};

// Named loss terms in the order a method computed them; the trainer sums them.
using LossTerms = std::vector<std::pair<std::string, at::Tensor>>;

}  // namespace sscl
