#include "tools/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <thread>

#include "core/error.h"

namespace sscl {

namespace {

volatile std::sig_atomic_t forwarded_signal = 0;

void remember_signal(int signal) { forwarded_signal = signal; }

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "ended (status " + std::to_string(status) + ")";
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  check<IoError>(fd >= 0, std::string("--nproc: cannot open a socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  check<IoError>(ok, std::string("--nproc: no free port on 127.0.0.1: ") + std::strerror(errno));
  return ntohs(addr.sin_port);
}

int launch_local_ranks(int nproc, const std::vector<std::string>& args, double grace_s) {
  const int port = free_local_port();
  std::vector<pid_t> pids(static_cast<size_t>(nproc), -1);
  struct sigaction action {};
  action.sa_handler = remember_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  for (int rank = 0; rank < nproc; ++rank) {
    const pid_t pid = ::fork();
    check<IoError>(pid >= 0, std::string("--nproc: fork failed: ") + std::strerror(errno));
    if (pid == 0) {
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      setenv("RANK", std::to_string(rank).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::cerr << "error: --nproc: cannot start rank " << rank << ": " << std::strerror(errno) << "\n";
      ::_exit(127);
    }
    pids[static_cast<size_t>(rank)] = pid;
  }
  int running = nproc, result = 0;
  bool stopping = false;
  auto stop_deadline = std::chrono::steady_clock::time_point::max();
  const auto signal_all = [&](int sig) {
    for (pid_t pid : pids)
      if (pid > 0) ::kill(pid, sig);
  };
  int forwarded = 0;
  while (running > 0) {
    if (forwarded_signal != 0 && forwarded != forwarded_signal) {
      forwarded = forwarded_signal;
      signal_all(forwarded);  // each rank checkpoints and stops
    }
    if (stopping && std::chrono::steady_clock::now() > stop_deadline) {
      signal_all(SIGKILL);
      stop_deadline = std::chrono::steady_clock::time_point::max();
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid == 0 || (pid < 0 && errno == EINTR)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    if (pid < 0) break;
    const auto rank_of = [&](pid_t p) {
      int r = 0;
      while (r < nproc && pids[static_cast<size_t>(r)] != p) ++r;
      return r;
    };
    int rank = rank_of(pid);
    if (rank == nproc) continue;
    pids[static_cast<size_t>(rank)] = -1;
    --running;
    if (exit_code_of(status) == 0 || stopping || forwarded) {
      if (exit_code_of(status) != 0 && result == 0) result = exit_code_of(status);
      continue;
    }
    // The first failure is the run's. A rank that was killed takes the others
    // down with it: among the ranks that ended by now, name a killed one first.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (int other_status = 0;;) {
      const pid_t other = ::waitpid(-1, &other_status, WNOHANG);
      if (other <= 0) break;
      const int other_rank = rank_of(other);
      if (other_rank == nproc) continue;
      pids[static_cast<size_t>(other_rank)] = -1;
      --running;
      if (WIFSIGNALED(other_status) && !WIFSIGNALED(status)) {
        rank = other_rank;
        status = other_status;
      }
    }
    result = exit_code_of(status);
    std::cerr << "error: rank " << rank << " of " << nproc << " " << describe_status(status)
              << (running > 0 ? "; stopping the other ranks" : "") << "\n";
    stopping = true;
    signal_all(SIGTERM);
    stop_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(grace_s * 1000));
  }
  return result;
}

}  // namespace sscl
