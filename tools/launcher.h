// tools/train --nproc N: starts N ranks of this same program on this machine
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a
// free MASTER_PORT in their environment, the rest of the command line unchanged)
// and waits for them, as torchrun does for one node:
//   - a rank that fails (non-zero exit, or killed; a killed one first when
//     several end together) is named on stderr, the others get SIGTERM and,
//     after `grace_s`, SIGKILL (one that hangs or was stopped); the launcher
//     exits with the failed rank's status;
//   - SIGINT or SIGTERM to the launcher goes to every rank, which agree on the
//     stop, write a checkpoint (rank 0) and end; they are not killed meanwhile.
#pragma once

#include <string>
#include <vector>

namespace sscl {

// `args`: the command line without --nproc (args[0] the program). Returns the
// exit status for main().
int launch_local_ranks(int nproc, const std::vector<std::string>& args, double grace_s);

// A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice).
int free_local_port();

}  // namespace sscl
