#include "core/world.h"

#include <ATen/ATen.h>

namespace sscl {

std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int size) {
  // Rank r holds [r*n/size, (r+1)*n/size): the first ranks get the smaller slices.
  return {n * rank / size, n * (rank + 1) / size};
}

at::Tensor World::shard_rows(const at::Tensor& global) const {
  if (!distributed() || !global.defined()) return global;
  const auto [begin, end] = shard(global.size(0));
  return global.narrow(0, begin, end - begin);
}

std::shared_ptr<World> single_process_world() { return std::make_shared<World>(); }

}  // namespace sscl
