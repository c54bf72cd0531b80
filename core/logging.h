// spdlog loggers, one per component ("trainer", "data", "config", ...), sharing
// the same sinks: the console and, once a run directory exists, its train.log.
// Progress is logged by hooks, never by methods or the loop.
#pragma once

#include <spdlog/logger.h>

#include <filesystem>
#include <memory>
#include <string>

namespace sscl {

std::shared_ptr<spdlog::logger> get_logger(const std::string& component);

// Adds `file` as a sink of every logger (existing and future ones); with
// `warnings_only` it receives warnings and errors only.
void add_log_file(const std::filesystem::path& file, bool warnings_only = false);
// The console shows warnings and errors only (the ranks but 0 of a distributed run).
void console_warnings_only();
// Back to console only (tests, successive runs in one process).
void reset_log_files();
// Silences the console sink (tests); files still receive everything.
void set_console_logging(bool enabled);

}  // namespace sscl
