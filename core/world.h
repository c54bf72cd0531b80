// The processes a run trains in: one, or the ranks of a c10d process group
// (core/distributed.h). A distributed run is the same run as on one process:
// each rank holds a contiguous slice of every global batch, gradients are
// averaged, and whatever a method keeps is built from the whole global batch
// (gather_rows), so every rank holds the same state after every iteration.
// The trainer, the evaluator and the methods see this interface only; the
// single-process World does nothing and copies nothing.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sscl {

// Rows [begin, end) of a global batch of n rows held by `rank` of `size`:
// contiguous slices in rank order, sizes differing by at most one.
std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int size);

class World {
 public:
  virtual ~World() = default;

  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  // The rank among the processes of this machine (its GPU), and their number.
  virtual int local_rank() const { return 0; }
  virtual int local_size() const { return 1; }
  // "gloo" | "nccl"; "none" for one process.
  virtual std::string backend() const { return "none"; }
  bool distributed() const { return size() > 1; }
  bool is_main() const { return rank() == 0; }

  std::pair<int64_t, int64_t> shard(int64_t n) const { return shard_range(n, rank(), size()); }
  // This rank's rows of a global batch (dimension 0); the tensor itself on one process.
  at::Tensor shard_rows(const at::Tensor& global) const;

  // Sums each tensor over the ranks, in place.
  virtual void all_reduce_sum(std::vector<at::Tensor>& /*tensors*/) {}
  // Starts the sum of one tensor in place and returns what waits for it.
  virtual std::function<void()> all_reduce_sum_async(at::Tensor& /*tensor*/) {
    return [] {};
  }
  // Every rank's `local` rows (dimension 0) concatenated in rank order: the
  // global batch's rows when each rank passes its shard. Ranks may pass
  // different row counts; the other dimensions and the dtype must agree.
  virtual at::Tensor gather_rows(const at::Tensor& local) { return local; }
  // Rank `root`'s values into every rank's tensors (same shapes everywhere).
  virtual void broadcast(std::vector<at::Tensor>& /*tensors*/, int /*root*/ = 0) {}
  // Rank 0's `value` on every rank (the run directory, say).
  virtual std::string broadcast_string(const std::string& value) { return value; }
  virtual void barrier() {}
};

// One process.
std::shared_ptr<World> single_process_world();

class Stateful;
// The fingerprint of `state` (StateVisitor::fingerprint) when every rank's is
// the same; otherwise Error naming `what` and each rank whose state differs from
// rank 0's. One gather; a distributed run calls it at every task end.
std::uint64_t check_ranks_agree(World& world, Stateful& state, const std::string& what);

}  // namespace sscl
