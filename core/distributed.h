// A World on PyTorch's c10d (core/world.h): the ranks a launcher started, found
// from the environment, joined through a TCPStore (or a FileStore on a shared
// filesystem) into a ProcessGroupGloo, or a ProcessGroupNCCL in a CUDA build.
//
// The environment, in the order it is read (the first family that is set wins):
//   RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE   torchrun, tools/train --nproc
//   OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK,LOCAL_SIZE} mpirun (Open MPI)
//   SLURM_PROCID, SLURM_STEP_NUM_TASKS (or SLURM_NTASKS), SLURM_LOCALID,
//   SLURM_STEP_TASKS_PER_NODE                        srun
// and MASTER_ADDR, MASTER_PORT for the rendezvous (MASTER_ADDR may be left out
// when every rank is on this machine).
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/options.h"
#include "core/world.h"

namespace sscl {

// Where this process stands among the ranks; world_size 1 when no launcher set any.
struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_size = 1;
  std::string master_addr;  // empty: not set
  int master_port = 29500;
  std::string source;  // the family read ("RANK", "OMPI_COMM_WORLD", "SLURM"), empty for none
};

// Reads the environment through `getenv` (tests pass their own). Throws
// ConfigError naming the variable for a family that is set incompletely or
// inconsistently: WORLD_SIZE without RANK, RANK >= WORLD_SIZE, a port out of range.
DistEnv read_dist_env(const std::function<const char*(const char*)>& getenv);
DistEnv read_dist_env();

// [train] keys of a distributed run.
struct DistOptions {
  std::string backend = "auto";  // auto | gloo | nccl
  double timeout_s = 60;         // train.dist_timeout_s: a collective or the rendezvous waits this long
  std::string init = "env://";   // train.dist_init: env:// | tcp://HOST:PORT | file:///PATH
  double bucket_mb = 25;         // train.dist_bucket_mb: gradients all-reduced per bucket of this size
  static void declare(OptionSpec<DistOptions>& o);
};

// Whether this build has the Gloo and NCCL process groups.
bool built_with_gloo();
bool built_with_nccl();

// The world of `env`: one process when env.world_size is 1, otherwise the joined
// process group (blocks until every rank has joined, or throws ConfigError
// naming MASTER_ADDR / MASTER_PORT / train.dist_init after timeout_s).
std::shared_ptr<World> make_world(const DistEnv& env, const DistOptions& options, c10::Device device);

}  // namespace sscl
