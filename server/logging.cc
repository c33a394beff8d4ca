#include "server/logging.h"

#include <cstdio>
#include <iterator>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

namespace kpm::server {
namespace {

/// Writes formatted lines to stderr after removing every configured key value.
class ScrubbingStderrSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void SetScrubber(std::shared_ptr<const Scrubber> s) {
    std::lock_guard<std::mutex> lock(this->mutex_);
    scrubber_ = std::move(s);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    std::string line(buf.data(), buf.size());
    if (scrubber_) line = scrubber_->Scrub(line);
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }

 private:
  std::shared_ptr<const Scrubber> scrubber_;
};

std::shared_ptr<ScrubbingStderrSink>& Sink() {
  static std::shared_ptr<ScrubbingStderrSink> sink = std::make_shared<ScrubbingStderrSink>();
  return sink;
}

}  // namespace

void InstallStderrLogger() {
  auto logger = std::make_shared<spdlog::logger>("keypool-mcp", Sink());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void SetLogScrubber(std::shared_ptr<const Scrubber> scrubber) { Sink()->SetScrubber(std::move(scrubber)); }

std::optional<spdlog::level::level_enum> ParseLogLevel(std::string_view name) {
  static constexpr spdlog::level::level_enum kLevels[] = {spdlog::level::trace, spdlog::level::debug,
                                                          spdlog::level::info,  spdlog::level::warn,
                                                          spdlog::level::err,   spdlog::level::off};
  static_assert(std::size(kLevels) == std::size(kLogLevelNames));
  for (size_t i = 0; i < std::size(kLevels); ++i) {
    if (name == kLogLevelNames[i]) return kLevels[i];
  }
  if (name == "warning") return spdlog::level::warn;
  if (name == "critical") return spdlog::level::critical;
  return std::nullopt;
}

}  // namespace kpm::server
