// The pieces of a distributed run that need no second process: slices of a
// global batch, the launcher environment, the gradient buckets against a world
// that stands in for the other rank, and c10d's Gloo group of two ranks in two
// threads of this process (127.0.0.1, a port the kernel picks).
#include "core/distributed.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/torch.h>
#include <unistd.h>

#include <map>
#include <thread>

#include "core/error.h"
#include "core/grad_sync.h"
#include "core/nn/all_reduce.h"
#include "core/nn/batch_norm.h"
#include "core/state.h"
#include "core/world.h"

namespace sscl {
namespace {

TEST(ShardRange, ContiguousSlicesInRankOrderThatCoverTheBatch) {
  EXPECT_EQ(shard_range(10, 0, 3), std::make_pair(int64_t{0}, int64_t{3}));
  EXPECT_EQ(shard_range(10, 1, 3), std::make_pair(int64_t{3}, int64_t{6}));
  EXPECT_EQ(shard_range(10, 2, 3), std::make_pair(int64_t{6}, int64_t{10}));
  EXPECT_EQ(shard_range(1, 0, 2), std::make_pair(int64_t{0}, int64_t{0}));  // a rank may hold nothing
  EXPECT_EQ(shard_range(1, 1, 2), std::make_pair(int64_t{0}, int64_t{1}));
  EXPECT_EQ(shard_range(7, 0, 1), std::make_pair(int64_t{0}, int64_t{7}));
}

TEST(SingleProcessWorld, ChangesNothing) {
  auto world = single_process_world();
  EXPECT_FALSE(world->distributed());
  const auto t = torch::arange(6).reshape({3, 2});
  EXPECT_TRUE(world->shard_rows(t).equal(t));
  EXPECT_TRUE(world->gather_rows(t).equal(t));
  EXPECT_EQ(world->broadcast_string("x"), "x");
}

using Env = std::map<std::string, std::string>;

DistEnv read_env(const Env& env) {
  return read_dist_env([&](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const Env& env) {
  try {
    read_env(env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ReadDistEnv, NoLauncherIsOneProcess) {
  const auto env = read_env({});
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.rank, 0);
  EXPECT_TRUE(env.source.empty());
}

TEST(ReadDistEnv, ReadsEachLauncherFamily) {
  auto env = read_env({{"RANK", "1"},
                       {"WORLD_SIZE", "4"},
                       {"LOCAL_RANK", "1"},
                       {"LOCAL_WORLD_SIZE", "2"},
                       {"MASTER_ADDR", "node7"},
                       {"MASTER_PORT", "29411"}});
  EXPECT_EQ(env.rank, 1);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_size, 2);
  EXPECT_EQ(env.master_addr, "node7");
  EXPECT_EQ(env.master_port, 29411);
  EXPECT_EQ(env.source, "RANK");

  env = read_env({{"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "3"}});
  EXPECT_EQ(env.source, "OMPI_COMM_WORLD");
  EXPECT_EQ(env.rank, 2);
  EXPECT_EQ(env.local_size, 3);  // no local variables: every rank here

  env = read_env({{"SLURM_PROCID", "3"},
                  {"SLURM_STEP_NUM_TASKS", "4"},
                  {"SLURM_LOCALID", "1"},
                  {"SLURM_STEP_TASKS_PER_NODE", "2(x2)"}});
  EXPECT_EQ(env.source, "SLURM");
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_size, 2);
  EXPECT_EQ(read_env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}).world_size, 2);
  // torchrun's variables win over the allocation's.
  EXPECT_EQ(read_env({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}}).world_size, 1);
}

TEST(ReadDistEnv, BadEnvironmentNamesTheVariable) {
  EXPECT_NE(error_of({{"WORLD_SIZE", "2"}}).find("WORLD_SIZE=2 is set but RANK is not"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}}).find("RANK=0 is set but WORLD_SIZE is not"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("RANK=2 is not below WORLD_SIZE=2"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "one"}, {"WORLD_SIZE", "2"}}).find("RANK='one'"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}).find("MASTER_PORT=70000"),
            std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "3"}, {"LOCAL_WORLD_SIZE", "2"}})
                .find("LOCAL_RANK=3"),
            std::string::npos);
}

// Rank 0 of two. The peer's side of each all_reduce_sum is the next of
// `peer_sums`; of each async one, the next slice of the peer's flat buckets.
class TwoRankStandIn : public World {
 public:
  explicit TwoRankStandIn(std::vector<at::Tensor> peer_sums) : peer_sums_(std::move(peer_sums)) {}
  int size() const override { return 2; }
  void all_reduce_sum(std::vector<at::Tensor>& tensors) override {
    for (auto& t : tensors) t.add_(peer_sums_.at(next_sum_++).to(t.scalar_type()));
  }
  std::function<void()> all_reduce_sum_async(at::Tensor& flat) override {
    starts.push_back(flat.numel());
    return [this, flat]() mutable {
      // The peer's flat bucket: its gradients in the same member order as ours.
      flat.add_(peer_flat_.narrow(0, offset_, flat.numel()));
      offset_ += flat.numel();
    };
  }
  void set_peer_flat(at::Tensor flat) { peer_flat_ = std::move(flat); }
  std::vector<int64_t> starts;

 private:
  std::vector<at::Tensor> peer_sums_;
  size_t next_sum_ = 0;
  at::Tensor peer_flat_;
  int64_t offset_ = 0;
};

TEST(GradSync, AveragesEveryGradientWithThePeersInBucketsOfTheLimit) {
  // y = w2 * (w1 * x); w3 is never used (its gradient stays undefined).
  auto w1 = torch::tensor({2.0f, 3.0f}).requires_grad_();
  auto w2 = torch::tensor({5.0f}).requires_grad_();
  auto w3 = torch::tensor({1.0f}).requires_grad_();
  TwoRankStandIn world({});
  // A limit of 8 bytes: w3 and w2 (reverse order) share one bucket, w1 gets its own.
  GradSync sync(world, {w1, w2, w3}, 8.0 / (1024 * 1024));
  EXPECT_EQ(sync.num_buckets(), 2u);
  // The peer's gradients, in bucket order [w2] (w3 has none), then [w1].
  world.set_peer_flat(torch::tensor({10.0f, 20.0f, 40.0f}));
  sync.arm();
  const auto x = torch::tensor({1.0f, 4.0f});
  (w2 * (w1 * x)).sum().backward();
  // Local: dw1 = w2 * x = [5, 20], dw2 = sum(w1 * x) = 14.
  sync.finish();
  EXPECT_TRUE(torch::allclose(w2.grad(), torch::tensor({(14.0f + 10.0f) / 2})));
  EXPECT_TRUE(torch::allclose(w1.grad(), torch::tensor({(5.0f + 20.0f) / 2, (20.0f + 40.0f) / 2})));
  EXPECT_FALSE(w3.grad().defined());
  // w2's bucket could only start once w3's turn had passed: at finish, so both buckets
  // started, in bucket order.
  EXPECT_EQ(world.starts, (std::vector<int64_t>{1, 2}));
}

std::shared_ptr<World> not_owned(World& world) {
  return {&world, [](World*) {}};
}

TEST(SyncBatchNorm, NormalisesOverThePeersRowsAndBackpropagatesTheWholeBatchsLoss) {
  // One channel. Rows here x = [1, 3]; the peer's [5, 7]: mean 4, biased variance 5.
  // Backward: dy here [1, 2]; the peer's [3, 6] at x − mean = [1, 3].
  TwoRankStandIn world({torch::tensor({12.0, 25.0 + 49.0, 2.0}),          // sum, sum of squares, count
                        torch::tensor({3.0 + 6.0, 3.0 * 1 + 6.0 * 3})});  // sum dy, sum dy·(x − mean)
  BatchNorm1d bn(1);
  bn->sync_with(not_owned(world));
  EXPECT_TRUE(bn->synced());
  const auto x = torch::tensor({{1.0f}, {3.0f}}).requires_grad_();
  const auto y = bn(x);
  const double invstd = 1 / std::sqrt(5 + 1e-5);
  EXPECT_TRUE(torch::allclose(y, torch::tensor({{-3 * invstd}, {-1 * invstd}}).to(torch::kFloat)));
  // Momentum 0.1 with the global unbiased variance 5·4/3.
  EXPECT_TRUE(torch::allclose(bn->running_mean, torch::tensor({0.4f})));
  EXPECT_TRUE(torch::allclose(bn->running_var, torch::tensor({static_cast<float>(0.9 + 0.1 * 20.0 / 3)})));
  (y * torch::tensor({{1.0f}, {2.0f}})).sum().backward();
  // Global: mean dy = 12/4 = 3, mean dy·(x − mean) = (−3 − 2 + 3 + 18)/4 = 4.
  // dx = (dy − 3 − (x − mean)·invstd²·4)·invstd.
  const double s = invstd * invstd * 4;
  EXPECT_TRUE(torch::allclose(
      x.grad(), torch::tensor({{(1 - 3 + 3 * s) * invstd}, {(2 - 3 + 1 * s) * invstd}}).to(torch::kFloat)));
  // Weight and bias: this rank's rows only (the gradient all-reduce averages them).
  EXPECT_TRUE(torch::allclose(bn->weight.grad(), torch::tensor({static_cast<float>(-5 * invstd)})));
  EXPECT_TRUE(torch::allclose(bn->bias.grad(), torch::tensor({3.0f})));
}

TEST(SyncBatchNorm, UnsyncedAndInEvalModeItIsTorchsBatchNorm) {
  torch::manual_seed(5);
  const auto x = torch::randn({6, 3, 4, 4}) * 3 + 2;
  BatchNorm2d ours(torch::nn::BatchNormOptions(3).momentum(0.3));
  torch::nn::BatchNorm2d theirs(torch::nn::BatchNorm2dOptions(3).momentum(0.3));
  EXPECT_TRUE(ours(x).equal(theirs(x)));
  EXPECT_TRUE(ours->running_var.equal(theirs->running_var));
  // Synced on one process: the same values up to rounding (its own computation).
  ours->sync_with(single_process_world());
  EXPECT_TRUE(ours->synced());
  EXPECT_TRUE(torch::allclose(ours(x), theirs(x), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(ours->running_var, theirs->running_var, 1e-5, 1e-5));
  // Eval mode uses the running statistics: torch's kernel.
  {
    torch::NoGradGuard no_grad;
    ours->running_mean.copy_(theirs->running_mean);
    ours->running_var.copy_(theirs->running_var);
  }
  ours->eval();
  theirs->eval();
  EXPECT_TRUE(ours(x).equal(theirs(x)));
  std::vector<std::string> names;
  for (const auto& item : ours->named_buffers()) names.push_back(item.key());
  EXPECT_EQ(names, (std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"}));
}

TEST(SyncBatchNorm, SyncsEveryLayerAndRefusesTorchsOwn) {
  TwoRankStandIn world({});
  torch::nn::Sequential ours(torch::nn::Linear(2, 2), BatchNorm1d(2), BatchNorm1d(2));
  EXPECT_EQ(sync_batch_norm(*ours, not_owned(world)), 2);
  torch::nn::Sequential theirs(torch::nn::Linear(2, 2), torch::nn::BatchNorm1d(2));
  try {
    sync_batch_norm(*theirs, not_owned(world));
    ADD_FAILURE() << "synced a torch::nn BatchNorm";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'1' is a torch::nn BatchNorm"), std::string::npos) << e.what();
  }
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Runs body(world) on ranks 0 and 1 of a Gloo group, each in its own thread.
template <typename Body>
void on_two_gloo_ranks(Body body) {
  if (!built_with_gloo()) GTEST_SKIP() << "built without Gloo's headers";
  const int port = free_port();
  std::string errors[2];
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank)
    threads.emplace_back([&, rank] {
      try {
        DistEnv env;
        env.rank = rank;
        env.world_size = 2;
        env.local_rank = rank;
        env.local_size = 2;
        env.master_addr = "127.0.0.1";
        env.master_port = port;
        DistOptions options;
        options.timeout_s = 20;
        auto world = make_world(env, options, torch::kCPU);
        body(*world);
      } catch (const std::exception& e) {
        errors[rank] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
}

TEST(GlooWorld, GathersRowsOfUnequalSlicesInRankOrder) {
  on_two_gloo_ranks([](World& world) {
    EXPECT_EQ(world.backend(), "gloo");
    // Rank 0 holds one row, rank 1 two: 3 rows of a global batch.
    const auto global = torch::arange(6, torch::kFloat).reshape({3, 2});
    const auto mine = world.rank() == 0 ? global.narrow(0, 0, 1) : global.narrow(0, 1, 2);
    EXPECT_TRUE(world.gather_rows(mine).equal(global));
    std::vector<at::Tensor> sum{torch::full({2}, world.rank() + 1.0)};
    world.all_reduce_sum(sum);
    EXPECT_TRUE(sum[0].equal(torch::full({2}, 3.0)));
    std::vector<at::Tensor> b{torch::full({1}, world.rank() == 0 ? 7.0 : -1.0)};
    world.broadcast(b, 0);
    EXPECT_EQ(b[0].item<double>(), 7.0);
    EXPECT_EQ(world.broadcast_string(world.rank() == 0 ? "work_dirs/x/1" : ""), "work_dirs/x/1");
    world.barrier();
  });
}

TEST(GlooWorld, GradSyncGivesBothRanksTheMeanGradient) {
  on_two_gloo_ranks([](World& world) {
    torch::manual_seed(3);  // threads share the generator: the weights are set by hand
    auto linear = torch::nn::Linear(3, 2);
    {
      torch::NoGradGuard no_grad;
      linear->weight.copy_(torch::tensor({{1.0f, 2.0f, 3.0f}, {-1.0f, 0.5f, 0.0f}}));
      linear->bias.copy_(torch::tensor({0.1f, -0.2f}));
    }
    GradSync sync(world, linear->parameters(), 25);
    // Rank r's input is r + 1 in every entry; d(sum of outputs)/dW = x per row, /db = 1.
    const auto x = torch::full({1, 3}, world.rank() + 1.0f);
    sync.arm();
    linear->forward(x).sum().backward();
    sync.finish();
    EXPECT_TRUE(torch::allclose(linear->weight.grad(), torch::full({2, 3}, 1.5f)));
    EXPECT_TRUE(torch::allclose(linear->bias.grad(), torch::ones({2})));
  });
}

TEST(GlooWorld, SyncBatchNormOnTwoRanksIsBatchNormOverTheWholeBatch) {
  on_two_gloo_ranks([](World& world) {
    // The same global batch in both threads (each its own generator).
    auto generator = at::detail::createCPUGenerator(11);
    const auto global = torch::randn({8, 3, 4, 4}, generator) * 2 + 1;
    const auto weights = torch::randn({8, 3, 4, 4}, generator);  // the loss: sum(y · weights)
    // The reference: one process's BatchNorm over all 8 rows.
    BatchNorm2d whole(3);
    const auto x_all = global.clone().requires_grad_();
    const auto y_all = whole(x_all);
    (y_all * weights).sum().backward();

    BatchNorm2d synced(3);
    synced->sync_with(not_owned(world));
    const auto x = world.shard_rows(global).clone().requires_grad_();
    const auto y = synced(x);
    (y * world.shard_rows(weights)).sum().backward();
    EXPECT_TRUE(torch::allclose(y, world.shard_rows(y_all.detach()), 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(x.grad(), world.shard_rows(x_all.grad()), 1e-5, 1e-5));
    std::vector<at::Tensor> grads{synced->weight.grad().clone(), synced->bias.grad().clone()};
    world.all_reduce_sum(grads);  // the ranks' shares add up to the whole batch's
    EXPECT_TRUE(torch::allclose(grads[0], whole->weight.grad(), 1e-5, 1e-4));
    EXPECT_TRUE(torch::allclose(grads[1], whole->bias.grad(), 1e-5, 1e-4));
    EXPECT_TRUE(torch::allclose(synced->running_mean, whole->running_mean, 1e-6, 1e-5));
    EXPECT_TRUE(torch::allclose(synced->running_var, whole->running_var, 1e-6, 1e-5));
    // Without the sync each rank normalises its half alone: not the same.
    BatchNorm2d local(3);
    EXPECT_FALSE(torch::allclose(local(world.shard_rows(global)), y.detach(), 1e-3, 1e-3));
  });
}

// What each rank holds: a counter and a tensor it was handed.
struct RankHeld : Stateful {
  int64_t seen = 0;
  at::Tensor values;
  void visit_state(StateVisitor& s) override {
    s("seen", seen);
    s("values", values);
  }
};

TEST(GlooWorld, RanksThatHoldTheSameStateAgreeAndOnesThatDoNotAreNamedWithTheField) {
  on_two_gloo_ranks([](World& world) {
    RankHeld held;
    held.seen = 3;
    held.values = torch::tensor({1.0f, 2.0f});
    const auto agreed = check_ranks_agree(world, held, "the test state");
    EXPECT_EQ(agreed, StateVisitor::fingerprint(held));
    if (world.rank() == 1) held.values = torch::tensor({1.0f, 2.5f});
    try {
      check_ranks_agree(world, held, "the test state");
      ADD_FAILURE() << "rank " << world.rank() << ": the differing values were not found";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("the test state differs across ranks"), std::string::npos) << what;
      EXPECT_NE(what.find("rank 1 first differs in 'values'"), std::string::npos) << what;
    }
  });
}

// L = sum(s^2) of s = x0 + x1, by hand: s = [4, 1]; one process's gradient of L
// with respect to either x is 2s = [8, 2]. Each rank's backward sums both ranks'
// gradients of s ([16, 4]), and the trainer's average over the 2 ranks gives 2s.
TEST(GlooWorld, AllReduceWithGradGivesTheOneProcessGradientOnceAveraged) {
  on_two_gloo_ranks([](World& world) {
    auto x = world.rank() == 0 ? torch::tensor({1.0, 2.0}, torch::kDouble) : torch::tensor({3.0, -1.0}, torch::kDouble);
    x.requires_grad_(true);
    const auto s = all_reduce_sum_with_grad(world, x);
    EXPECT_TRUE(s.equal(torch::tensor({4.0, 1.0}, torch::kDouble)));
    (s * s).sum().backward();
    EXPECT_TRUE((x.grad() / world.size()).equal(torch::tensor({8.0, 2.0}, torch::kDouble))) << x.grad();
  });
}

// A pairwise term over the whole batch (CCIC's triplets): rows g = [1 | 2, 4]
// held as rank 0's shard [1] and rank 1's [2, 4]. L = sum over pairs i < j of
// (g_i - g_j)^2 = 1 + 9 + 4 = 14 on every rank; dL/dg_i = 2 sum_j (g_i - g_j) =
// [-8, -2, 10], which each rank's rows get once the trainer averages.
TEST(GlooWorld, GatherShardsWithGradGivesTheOneProcessGradientOnceAveraged) {
  on_two_gloo_ranks([](World& world) {
    auto x = world.rank() == 0 ? torch::tensor({1.0}, torch::kDouble) : torch::tensor({2.0, 4.0}, torch::kDouble);
    x.requires_grad_(true);
    const auto g = gather_shards_with_grad(world, x, 3);
    EXPECT_TRUE(g.equal(torch::tensor({1.0, 2.0, 4.0}, torch::kDouble))) << g;
    const auto loss = (g.unsqueeze(0) - g.unsqueeze(1)).pow(2).sum() / 2;
    EXPECT_DOUBLE_EQ(loss.item<double>(), 14.0);
    loss.backward();
    const auto expected =
        world.rank() == 0 ? torch::tensor({-8.0}, torch::kDouble) : torch::tensor({-2.0, 10.0}, torch::kDouble);
    EXPECT_TRUE((x.grad() / world.size()).equal(expected)) << x.grad();
  });
}

TEST(GlooWorld, MasterThatNeverAnswersFailsWithinTheTimeoutNamingIt) {
  if (!built_with_gloo()) GTEST_SKIP() << "built without Gloo's headers";
  DistEnv env;
  env.rank = 1;
  env.world_size = 2;
  env.local_size = 2;
  env.local_rank = 1;
  env.master_addr = "127.0.0.1";
  env.master_port = free_port();  // nobody serves it
  DistOptions options;
  options.timeout_s = 2;
  const auto start = std::chrono::steady_clock::now();
  try {
    make_world(env, options, torch::kCPU);
    ADD_FAILURE() << "joined a master that does not exist";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("MASTER_PORT=" + std::to_string(env.master_port)), std::string::npos)
        << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

}  // namespace
}  // namespace sscl
