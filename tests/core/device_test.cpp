#include "core/device.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace sscl {
namespace {

TEST(DefaultThreads, OmpNumThreadsWinsOverTheCoresOfTheMachine) {
  EXPECT_EQ(default_threads("3", 8, 1), 3);
  EXPECT_EQ(default_threads("3", 8, 4), 3);      // set per process, as torchrun does
  EXPECT_EQ(default_threads(" 4,2", 8, 1), 4);   // a nested list: the outer level
  EXPECT_EQ(default_threads(nullptr, 8, 1), 8);  // unset: every core
  EXPECT_EQ(default_threads("", 8, 3), 2);       // empty is unset; 3 local ranks share 8 cores
  EXPECT_EQ(default_threads(nullptr, 2, 4), 1);  // never below one
}

TEST(DefaultThreads, AnOmpNumThreadsThatIsNotAPositiveIntegerIsNamed) {
  for (const char* bad : {"0", "-1", "two", "3x", "99999999"}) {
    try {
      default_threads(bad, 8, 1);
      FAIL() << "OMP_NUM_THREADS='" << bad << "' was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("OMP_NUM_THREADS='" + std::string(bad) + "'"), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace sscl
