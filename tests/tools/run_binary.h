// Runs the sscl binaries as a user would and captures their exit code and output.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/test_util.h"

namespace sscl::testing {

struct Process {
  int exit_code = -1;
  std::string out, err;
};

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
inline Process run_binary(const std::string& binary, const std::string& args, const TempDir& scratch) {
  return run_shell(binary + " " + args, scratch);
}

inline Process run_train(const std::string& args, const TempDir& scratch) {
  return run_binary(SSCL_TRAIN_BINARY, args, scratch);
}

inline std::string config_path(const std::string& relative) { return std::string(SSCL_SOURCE_DIR) + "/" + relative; }

// A refused command line of a tool: exit 1, one line on stderr naming `what`,
// and `out` (the tool's output directory) not created.
inline void expect_refused(const Process& p, const std::string& what, const std::filesystem::path& out) {
  EXPECT_EQ(p.exit_code, 1) << p.out;
  EXPECT_NE(p.err.find(what), std::string::npos) << p.err;
  EXPECT_EQ(std::count(p.err.begin(), p.err.end(), '\n'), 1) << p.err;
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace sscl::testing
