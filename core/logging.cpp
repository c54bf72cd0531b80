#include "core/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>

namespace sscl {

namespace {

struct Sinks {
  std::shared_ptr<spdlog::sinks::stdout_sink_mt> console = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  std::shared_ptr<spdlog::sinks::dist_sink_mt> files = std::make_shared<spdlog::sinks::dist_sink_mt>();
  std::mutex mutex;
};

Sinks& sinks() {
  static Sinks instance;
  return instance;
}

}  // namespace

std::shared_ptr<spdlog::logger> get_logger(const std::string& component) {
  auto& s = sinks();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (auto existing = spdlog::get(component)) return existing;
  auto logger = std::make_shared<spdlog::logger>(component, spdlog::sinks_init_list{s.console, s.files});
  logger->set_pattern("[%Y-%m-%d %H:%M:%S] [%n] %v");
  logger->flush_on(spdlog::level::info);
  spdlog::register_logger(logger);
  return logger;
}

void add_log_file(const std::filesystem::path& file, bool warnings_only) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file.string(), /*truncate=*/false);
  sink->set_pattern("[%Y-%m-%d %H:%M:%S] [%n] %v");
  if (warnings_only) sink->set_level(spdlog::level::warn);
  sinks().files->add_sink(sink);
}

void reset_log_files() { sinks().files->set_sinks({}); }

void console_warnings_only() { sinks().console->set_level(spdlog::level::warn); }

void set_console_logging(bool enabled) {
  sinks().console->set_level(enabled ? spdlog::level::trace : spdlog::level::off);
}

}  // namespace sscl
