// Runs the sscl_train binary as a user would and captures its exit code and output.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/test_util.h"

namespace sscl::testing {

struct Process {
  int exit_code = -1;
  std::string out, err;
};

inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A shell command line (sh), its output captured.
inline Process run_shell(const std::string& command_line, const TempDir& scratch) {
  const auto out = scratch / "stdout.txt", err = scratch / "stderr.txt";
  const std::string command = "{ " + command_line + "; } > '" + out.string() + "' 2> '" + err.string() + "'";
  const int status = std::system(command.c_str());
  Process p;
  p.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  p.out = read_file(out);
  p.err = read_file(err);
  return p;
}

// `args` is appended to the binary's path as it is (quote paths yourself).
inline Process run_train(const std::string& args, const TempDir& scratch) {
  return run_shell(std::string(SSCL_TRAIN_BINARY) + " " + args, scratch);
}

inline std::string config_path(const std::string& relative) { return std::string(SSCL_SOURCE_DIR) + "/" + relative; }

}  // namespace sscl::testing
