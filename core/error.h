// The error hierarchy. Library code throws; only tools/ catch, print one line and
// exit non-zero. Messages carry their own context (file:line, key, task, iteration).
#pragma once

#include <stdexcept>
#include <string>

namespace sscl {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A config file, key, value or command-line override is wrong.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A dataset file or directory is missing, truncated or malformed.
class DataError : public Error {
 public:
  using Error::Error;
};

// An unknown name was asked of a registry.
class RegistryError : public Error {
 public:
  using Error::Error;
};

// Training cannot go on (a non-finite loss, an unsupported scenario, ...).
class TrainingError : public Error {
 public:
  using Error::Error;
};

// Reading or writing a run directory or checkpoint failed.
class IoError : public Error {
 public:
  using Error::Error;
};

// A collective of a distributed run failed: a rank stopped, hung or cannot be reached.
class DistributedError : public Error {
 public:
  using Error::Error;
};

// SIGINT or SIGTERM stopped the run (after a checkpoint was written, if enabled).
class Interrupted : public Error {
 public:
  Interrupted(int signal, const std::string& message) : Error(message), signal_(signal) {}
  int signal() const { return signal_; }

 private:
  int signal_;
};

// Throws E(message) when `condition` is false; for option checks in constructors.
template <typename E = Error>
inline void check(bool condition, const std::string& message) {
  if (!condition) throw E(message);
}

}  // namespace sscl
