#include "providers/limits.h"

#include "keypool/rate_limit_hints.h"

namespace kpm::providers {

std::optional<int64_t> ParseDurationMs(std::string_view text) { return keypool::ParseGoDurationMs(text); }

void ExtendRetryAt(keypool::RateLimitInfo& info, int64_t at_ms) {
  if (!info.retry_at_ms || *info.retry_at_ms < at_ms) info.retry_at_ms = at_ms;
}

keypool::RateLimitInfo LimitsFromHeaders(const Headers& headers, int64_t now_ms) {
  return keypool::ParseRateLimitHeaders(headers, now_ms);
}

}  // namespace kpm::providers
