#pragma once
/// Logging setup: spdlog to stderr only (stdout is the protocol channel), every line
/// passed through the key scrubber first (SPEC §4). Call InstallStderrLogger() as the
/// first statement of main, before anything can log.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/common.h>

#include "common/redact.h"

namespace kpm::server {

void InstallStderrLogger();
/// Scrub every later log line with `scrubber` (set once the config's keys are known).
void SetLogScrubber(std::shared_ptr<const Scrubber> scrubber);
/// The log levels a config's `logLevel` and `--log-level` take, least severe first.
inline constexpr std::string_view kLogLevelNames[] = {"trace", "debug", "info", "warn", "error", "off"};
/// One of kLogLevelNames (also "warning", "critical") as spdlog's level, or nullopt.
std::optional<spdlog::level::level_enum> ParseLogLevel(std::string_view name);

}  // namespace kpm::server
