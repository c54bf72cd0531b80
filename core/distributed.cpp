// c10d's headers are included here only (a translation unit of its own, outside
// the unity batches): USE_C10D_GLOO / USE_C10D_NCCL switch their contents on.
// (Torch's CMake package may define them already.)
#if defined(SSCL_WITH_GLOO) && !defined(USE_C10D_GLOO)
#define USE_C10D_GLOO
#endif
#if defined(SSCL_WITH_NCCL) && !defined(USE_C10D_NCCL)
#define USE_C10D_NCCL
#endif

#include "core/distributed.h"

#include <c10/util/Logging.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#ifdef SSCL_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef SSCL_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "core/error.h"
#include "core/logging.h"

namespace sscl {

namespace {

using Getenv = std::function<const char*(const char*)>;

std::optional<std::string> env_value(const Getenv& getenv, const std::string& name) {
  const char* value = getenv(name.c_str());
  if (!value || !*value) return std::nullopt;
  return std::string(value);
}

int env_int(const std::string& name, const std::string& text) {
  size_t used = 0;
  long value = 0;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  check<ConfigError>(used == text.size() && used > 0 && value >= 0 && value <= std::numeric_limits<int>::max(),
                     "environment: " + name + "='" + text + "' is not a non-negative integer");
  return static_cast<int>(value);
}

// The leading count of a Slurm task list such as "2(x3),1": the tasks on this node
// when the nodes hold the same number.
int slurm_tasks_per_node(const std::string& text) {
  size_t end = 0;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
  return end == 0 ? 1 : std::stoi(text.substr(0, end));
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// c10d logs each failed connection attempt through c10's logging; the
// rendezvous's own error says it in one line, so those stay quiet meanwhile.
class QuietC10Logging {
 public:
  QuietC10Logging() : saved_(FLAGS_caffe2_log_level) {
    FLAGS_caffe2_log_level = 3;  // fatal only
    c10::UpdateLoggingLevelsFromFlags();
  }
  ~QuietC10Logging() {
    FLAGS_caffe2_log_level = saved_;
    c10::UpdateLoggingLevelsFromFlags();
  }

 private:
  int saved_;
};

}  // namespace

DistEnv read_dist_env(const Getenv& getenv) {
  struct Family {
    const char* source;
    const char* rank;
    const char* size;
    const char* local_rank;
    const char* local_size;
  };
  const Family families[] = {
      {"RANK", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"},
      {"OMPI_COMM_WORLD", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
       "OMPI_COMM_WORLD_LOCAL_SIZE"},
      {"SLURM", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID", "SLURM_STEP_TASKS_PER_NODE"},
  };
  DistEnv env;
  for (const Family& f : families) {
    auto rank = env_value(getenv, f.rank);
    auto size = env_value(getenv, f.size);
    std::string size_name = f.size;
    if (std::string(f.source) == "SLURM" && !size && rank) {
      size = env_value(getenv, "SLURM_NTASKS");
      size_name = "SLURM_NTASKS";
    }
    if (!rank && !size) continue;
    // Each message is built only when it applies (the other variable is unset).
    if (!rank) throw ConfigError("environment: " + size_name + "=" + *size + " is set but " + f.rank + " is not");
    if (!size)
      throw ConfigError("environment: " + std::string(f.rank) + "=" + *rank + " is set but " + size_name + " is not");
    env.source = f.source;
    env.rank = env_int(f.rank, *rank);
    env.world_size = env_int(size_name, *size);
    check<ConfigError>(env.world_size >= 1, "environment: " + size_name + " must be at least 1");
    check<ConfigError>(env.rank < env.world_size, "environment: " + std::string(f.rank) + "=" + *rank +
                                                      " is not below " + size_name + "=" + *size);
    const auto local_rank = env_value(getenv, f.local_rank);
    const auto local_size = env_value(getenv, f.local_size);
    env.local_rank = local_rank ? env_int(f.local_rank, *local_rank) : env.rank;
    if (local_size)
      env.local_size = env.source == "SLURM" ? slurm_tasks_per_node(*local_size) : env_int(f.local_size, *local_size);
    else
      env.local_size = local_rank ? env.local_rank + 1 : env.world_size;
    check<ConfigError>(env.local_rank < env.local_size && env.local_size <= env.world_size,
                       "environment: " + std::string(f.local_rank) + "=" + std::to_string(env.local_rank) +
                           " does not fit " + f.local_size + "=" + std::to_string(env.local_size) + " and " +
                           size_name + "=" + *size);
    break;
  }
  if (const auto addr = env_value(getenv, "MASTER_ADDR")) env.master_addr = *addr;
  if (const auto port = env_value(getenv, "MASTER_PORT")) {
    env.master_port = env_int("MASTER_PORT", *port);
    check<ConfigError>(env.master_port >= 1 && env.master_port <= 65535,
                       "environment: MASTER_PORT=" + *port + " is not a port (1-65535)");
  }
  return env;
}

DistEnv read_dist_env() {
  return read_dist_env([](const char* name) { return std::getenv(name); });
}

void DistOptions::declare(OptionSpec<DistOptions>& o) {
  o.key("backend", &DistOptions::backend, "distributed backend: auto = nccl on GPUs, gloo on CPUs")
      .one_of({"auto", "gloo", "nccl"});
  o.key("dist_timeout_s", &DistOptions::timeout_s,
        "seconds a rendezvous or collective waits for the other ranks before the run stops")
      .above(0);
  o.key("dist_init", &DistOptions::init,
        "rendezvous: env:// (MASTER_ADDR, MASTER_PORT), tcp://HOST:PORT, or file:///PATH on a shared filesystem");
  o.key("dist_bucket_mb", &DistOptions::bucket_mb, "gradients are all-reduced in buckets of this many MiB").above(0);
}

bool built_with_gloo() {
#ifdef SSCL_WITH_GLOO
  return true;
#else
  return false;
#endif
}

bool built_with_nccl() {
#ifdef SSCL_WITH_NCCL
  return true;
#else
  return false;
#endif
}

namespace {

// Every collective of a c10d process group (ProcessGroupGloo, ProcessGroupNCCL:
// the same calls in LibTorch 1.13 and 2.x) behind World.
template <typename Group>
class C10dWorld : public World {
 public:
  C10dWorld(c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<Group> group, const DistEnv& env,
            std::string backend, double timeout_s)
      : store_(std::move(store)),
        group_(std::move(group)),
        env_(env),
        backend_(std::move(backend)),
        timeout_s_(timeout_s) {
    heartbeat_ = std::thread([this] { beat(); });
  }
  ~C10dWorld() override {
    {
      std::lock_guard lock(beat_mutex_);
      stopping_ = true;
    }
    beat_wake_.notify_all();
    heartbeat_.join();
  }

  int rank() const override { return env_.rank; }
  int size() const override { return env_.world_size; }
  int local_rank() const override { return env_.local_rank; }
  int local_size() const override { return env_.local_size; }
  std::string backend() const override { return backend_; }

  void all_reduce_sum(std::vector<at::Tensor>& tensors) override {
    if (tensors.empty()) return;
    collective("all_reduce", [&] {
      for (auto& t : tensors) {
        std::vector<at::Tensor> one{t};
        group_->allreduce(one)->wait();
      }
    });
  }

  std::function<void()> all_reduce_sum_async(at::Tensor& tensor) override {
    std::vector<at::Tensor> one{tensor};
    c10::intrusive_ptr<c10d::Work> work;
    collective("all_reduce", [&] { work = group_->allreduce(one); });
    return [this, work] { collective("all_reduce", [&] { work->wait(); }); };
  }

  at::Tensor gather_rows(const at::Tensor& local) override {
    const auto contiguous = local.contiguous();
    // Row counts first: ranks may hold slices of different sizes.
    auto rows = torch::full({1}, contiguous.size(0), torch::TensorOptions().dtype(torch::kLong).device(local.device()));
    std::vector<std::vector<at::Tensor>> counts(1);
    for (int r = 0; r < size(); ++r) counts[0].push_back(torch::empty_like(rows));
    std::vector<at::Tensor> rows_in{rows};
    collective("all_gather", [&] { group_->allgather(counts, rows_in)->wait(); });
    int64_t most = 0;
    std::vector<int64_t> each;
    for (const auto& c : counts[0]) {
      each.push_back(c.item<int64_t>());
      most = std::max(most, each.back());
    }
    auto shape = contiguous.sizes().vec();
    shape[0] = most;
    auto padded = torch::zeros(shape, contiguous.options());
    if (contiguous.size(0) > 0) padded.narrow(0, 0, contiguous.size(0)).copy_(contiguous);
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < size(); ++r) out[0].push_back(torch::empty_like(padded));
    std::vector<at::Tensor> in{padded};
    collective("all_gather", [&] { group_->allgather(out, in)->wait(); });
    std::vector<at::Tensor> parts;
    for (int r = 0; r < size(); ++r) parts.push_back(out[0][r].narrow(0, 0, each[r]));
    return torch::cat(parts);
  }

  void broadcast(std::vector<at::Tensor>& tensors, int root) override {
    collective("broadcast", [&] {
      c10d::BroadcastOptions options;
      options.rootRank = root;
      for (auto& t : tensors) {
        std::vector<at::Tensor> one{t};
        group_->broadcast(one, options)->wait();
      }
    });
  }

  std::string broadcast_string(const std::string& value) override {
    const std::string key = "sscl/broadcast/" + std::to_string(broadcasts_++);
    std::string out = value;
    collective("broadcast", [&] {
      if (is_main()) {
        store_->set(key, std::vector<uint8_t>(value.begin(), value.end()));
      } else {
        const auto bytes = store_->get(key);
        out.assign(bytes.begin(), bytes.end());
      }
    });
    return out;
  }

  void barrier() override {
    collective("barrier", [&] { group_->barrier()->wait(); });
  }

 private:
  // A collective that throws (a rank died, hung or was unreachable past the
  // timeout): one DistributedError naming the ranks that stopped beating, the
  // operation and what c10d said.
  template <typename F>
  void collective(const char* what, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      throw DistributedError("rank " + std::to_string(rank()) + ": " + what + " across " + std::to_string(size()) +
                             " ranks failed: " + silent_ranks() + " (" + first_line(e.what()) +
                             "; train.dist_timeout_s = " + std::to_string(static_cast<int>(timeout_s_)) + " s)");
    }
  }

  // Every rank counts sscl/alive/<rank> up in the store twice a second, from a
  // thread of its own: a rank killed or stopped (SIGSTOP, a hung machine) stops
  // counting, a rank stuck in a computation does not.
  static std::string alive_key(int r) { return "sscl/alive/" + std::to_string(r); }
  void beat() {
    std::unique_lock lock(beat_mutex_);
    while (!stopping_) {
      lock.unlock();
      try {
        store_->add(alive_key(rank()), 1);
      } catch (const std::exception&) {
        return;  // the store is gone (rank 0 ended): nothing to tell
      }
      lock.lock();
      beat_wake_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_; });
    }
  }

  // The ranks whose count did not move over two seconds, for the error message.
  std::string silent_ranks() {
    try {
      std::vector<int64_t> before;
      for (int r = 0; r < size(); ++r) before.push_back(store_->add(alive_key(r), 0));
      std::this_thread::sleep_for(std::chrono::seconds(2));
      std::string silent;
      for (int r = 0; r < size(); ++r)
        if (r != rank() && store_->add(alive_key(r), 0) == before[static_cast<size_t>(r)])
          silent += (silent.empty() ? "" : ", ") + std::to_string(r);
      if (silent.empty()) return "every other rank is alive (one may be stuck in a computation)";
      return (silent.find(',') == std::string::npos ? "rank " : "ranks ") + silent +
             " stopped answering (killed, stopped or hung: see train.rank<N>.log)";
    } catch (const std::exception&) {
      return "rank 0, which holds the rendezvous, cannot be reached (it stopped, or its machine did)";
    }
  }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<Group> group_;
  DistEnv env_;
  std::string backend_;
  double timeout_s_;
  int64_t broadcasts_ = 0;
  std::mutex beat_mutex_;
  std::condition_variable beat_wake_;
  bool stopping_ = false;
  std::thread heartbeat_;  // last: it reads the members above
};

bool is_loopback(const std::string& host) { return host == "127.0.0.1" || host == "localhost" || host == "::1"; }

struct Rendezvous {
  std::string host;
  int port = 0;
  std::string file;   // file:// rendezvous
  std::string names;  // what the error messages name
};

Rendezvous parse_init(const DistOptions& options, const DistEnv& env) {
  Rendezvous r;
  const std::string& init = options.init;
  if (init == "env://") {
    check<ConfigError>(!env.master_addr.empty() || env.local_size == env.world_size,
                       "environment: MASTER_ADDR is not set and the " + std::to_string(env.world_size) +
                           " ranks are not all on this machine (" + std::to_string(env.local_size) + " here)");
    r.host = env.master_addr.empty() ? "127.0.0.1" : env.master_addr;
    r.port = env.master_port;
    r.names = "MASTER_ADDR=" + r.host + " MASTER_PORT=" + std::to_string(r.port);
  } else if (init.rfind("tcp://", 0) == 0) {
    const std::string rest = init.substr(6);
    const auto colon = rest.rfind(':');
    check<ConfigError>(colon != std::string::npos && colon > 0,
                       "train.dist_init = '" + init + "': expected tcp://HOST:PORT");
    r.host = rest.substr(0, colon);
    r.port = env_int("train.dist_init's port", rest.substr(colon + 1));
    check<ConfigError>(r.port >= 1 && r.port <= 65535, "train.dist_init = '" + init + "': the port is not 1-65535");
    r.names = "train.dist_init = " + init;
  } else if (init.rfind("file://", 0) == 0) {
    r.file = init.substr(7);
    check<ConfigError>(!r.file.empty() && r.file.front() == '/',
                       "train.dist_init = '" + init + "': expected file:///ABSOLUTE/PATH");
    r.names = "train.dist_init = " + init;
  } else {
    throw ConfigError("train.dist_init = '" + init + "': expected env://, tcp://HOST:PORT or file:///PATH");
  }
  return r;
}

c10::intrusive_ptr<c10d::Store> join_store(const Rendezvous& r, const DistEnv& env, std::chrono::milliseconds timeout) {
  if (!r.file.empty()) {
    auto store = c10::make_intrusive<c10d::FileStore>(r.file, env.world_size);
    store->setTimeout(timeout);
    return store;
  }
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(r.port);
  options.isServer = env.rank == 0;
  options.numWorkers = static_cast<size_t>(env.world_size);
  options.waitWorkers = true;
  options.timeout = timeout;
  try {
    return c10::make_intrusive<c10d::TCPStore>(r.host, options);
  } catch (const std::exception& e) {
    const std::string what = first_line(e.what());
    if (env.rank == 0)
      throw ConfigError(r.names + ": rank 0 could not serve the rendezvous there, or not every rank joined within " +
                        std::to_string(timeout.count() / 1000) + " s (" + what + ")");
    throw ConfigError(r.names + ": rank " + std::to_string(env.rank) + " found no master there within " +
                      std::to_string(timeout.count() / 1000) + " s (" + what + ")");
  }
}

}  // namespace

std::shared_ptr<World> make_world(const DistEnv& env, const DistOptions& options, c10::Device device) {
  if (env.world_size <= 1) return single_process_world();
  std::string backend = options.backend;
  if (backend == "auto") backend = device.is_cuda() && built_with_nccl() ? "nccl" : "gloo";
  check<ConfigError>(backend != "nccl" || device.is_cuda(), "train.backend = nccl needs a CUDA device (train.device)");
  check<ConfigError>(backend != "nccl" || built_with_nccl(),
                     "train.backend = nccl: this LibTorch has no NCCL process group (a CPU build); use gloo");
  check<ConfigError>(backend != "gloo" || built_with_gloo(),
                     "train.backend = gloo: sscl was built without Gloo's headers (install libgloo-dev and rebuild)");
  const Rendezvous rendezvous = parse_init(options, env);
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000));
  auto store = [&] {
    QuietC10Logging quiet;
    return join_store(rendezvous, env, timeout);
  }();
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("sscl/" + backend, store);
  get_logger("dist")->info("rank {} of {} (local {} of {}), {} rendezvous, backend {}", env.rank, env.world_size,
                           env.local_rank, env.local_size, rendezvous.names, backend);
#ifdef SSCL_WITH_NCCL
  if (backend == "nccl") {
    auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
    nccl_options->timeout = timeout;
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, env.rank, env.world_size, nccl_options);
    return std::make_shared<C10dWorld<c10d::ProcessGroupNCCL>>(store, group, env, backend, options.timeout_s);
  }
#endif
#ifdef SSCL_WITH_GLOO
  auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
  // Loopback when every rank is here (no name lookup); GLOO_SOCKET_IFNAME picks an
  // interface; otherwise the address this host's name resolves to.
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  else if (env.local_size == env.world_size || is_loopback(rendezvous.host))
    gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  else
    gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  try {
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env.rank, env.world_size, gloo_options);
    return std::make_shared<C10dWorld<c10d::ProcessGroupGloo>>(store, group, env, backend, options.timeout_s);
  } catch (const std::exception& e) {
    throw DistributedError("rank " + std::to_string(env.rank) + ": the Gloo process group of " +
                           std::to_string(env.world_size) + " ranks did not form within " +
                           std::to_string(static_cast<int>(options.timeout_s)) + " s (" + first_line(e.what()) + ")");
  }
#else
  throw ConfigError("distributed training needs Gloo: sscl was built without its headers (libgloo-dev)");
#endif
}

}  // namespace sscl
