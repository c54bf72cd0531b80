// A sum over the ranks that gradients flow through, for a term that is a
// function of statistics of the whole global batch (FreeMatch's fairness term:
// a function of the batch's mean prediction, not a mean over images), which
// every rank then evaluates alike.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace sscl {

class World;

// The sum of `local` over every rank, with gradient (`local` itself on one
// process). Backward sums the ranks' gradients of the result: every rank
// computes the same function of the sum and the trainer averages gradients over
// the ranks, so what reaches this rank's rows is the one-process gradient.
at::Tensor all_reduce_sum_with_grad(World& world, const at::Tensor& local);

// The rows of a global batch of `n` rows, with gradient, from every rank's
// shard of them (`local`: this rank's rows World::shard(n)), for a term over
// pairs of the whole batch's rows (CCIC's triplets) that every rank then
// evaluates alike; `local` itself on one process.
at::Tensor gather_shards_with_grad(World& world, const at::Tensor& local, int64_t n);

}  // namespace sscl
