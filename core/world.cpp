#include "core/world.h"

#include <ATen/ATen.h>

#include <cstring>

#include "core/error.h"
#include "core/state.h"

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

namespace {
at::Tensor as_int64(const std::vector<std::uint64_t>& values) {
  auto out = at::empty({static_cast<int64_t>(values.size())}, at::kLong);
  if (!values.empty()) std::memcpy(out.data_ptr<std::int64_t>(), values.data(), values.size() * sizeof(std::uint64_t));
  return out;
}

std::uint64_t as_uint64(const at::Tensor& all, int64_t i) {
  std::uint64_t value = 0;
  std::memcpy(&value, all.data_ptr<std::int64_t>() + i, sizeof value);
  return value;
}
}  // namespace

std::uint64_t check_ranks_agree(World& world, Stateful& state, const std::string& what) {
  const auto fields = StateVisitor::field_fingerprints(state);
  const std::uint64_t mine = StateVisitor::fingerprint(fields);  // one pass over the state
  if (!world.distributed()) return mine;
  const auto all = world.gather_rows(as_int64({mine})).contiguous();
  const int64_t ranks = all.size(0);
  bool agree = true;
  for (int64_t r = 1; r < ranks; ++r) agree = agree && as_uint64(all, r) == as_uint64(all, 0);
  if (agree) return mine;
  // Which field: every rank's digest of each (one more gather, only on failure).
  std::vector<std::uint64_t> digests;
  for (const auto& field : fields) digests.push_back(field.second);
  const auto counts = world.gather_rows(as_int64({digests.size()})).contiguous();
  const auto per_field = world.gather_rows(as_int64(digests)).contiguous();
  std::string differing;
  int64_t offset = counts.data_ptr<std::int64_t>()[0];
  for (int64_t r = 1; r < ranks; ++r) {
    const int64_t n = counts.data_ptr<std::int64_t>()[r];
    std::string where = "rank " + std::to_string(r) + " holds " + std::to_string(n) + " fields, rank 0 " +
                        std::to_string(counts.data_ptr<std::int64_t>()[0]);
    if (n == counts.data_ptr<std::int64_t>()[0]) {
      where.clear();
      for (int64_t i = 0; i < n && where.empty(); ++i)
        if (as_uint64(per_field, offset + i) != as_uint64(per_field, i))
          where = "rank " + std::to_string(r) + " first differs in '" + fields[static_cast<size_t>(i)].first + "'";
    }
    if (!where.empty()) differing += (differing.empty() ? "" : "; ") + where;
    offset += n;
  }
  throw Error(what + " differs across ranks (" + differing + " from rank 0's): a component does not build its " +
              "state from the whole global batch");
}

}  // namespace sscl
