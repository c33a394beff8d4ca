#pragma once
/// Rate-limit hints as the adapters use them: a thin layer over
/// keypool/rate_limit_hints.h, so the adapters depend on one small seam.

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/headers.h"
#include "keypool/outcome.h"

namespace kpm::providers {

/// Every hint the headers give (retry-after-ms, retry-after seconds or HTTP-date,
/// x-ratelimit-{remaining,reset}-{requests,tokens} with Go-style durations,
/// anthropic-ratelimit-* with RFC 3339 resets, OpenRouter's x-ratelimit-reset epoch
/// ms), resolved against `now_ms` (Unix ms). Empty when there are none.
keypool::RateLimitInfo LimitsFromHeaders(const Headers& headers, int64_t now_ms);

/// "35s", "38.2s", "0.2s", "6m0s", "547ms", "2m52.8s", "1h" -> milliseconds
/// (keypool::ParseGoDurationMs; also reads protobuf durations such as retryDelay).
std::optional<int64_t> ParseDurationMs(std::string_view text);

/// Sets `info.retry_at_ms` to `at_ms` unless it already names a later time
/// (hints only ever push the retry time out).
void ExtendRetryAt(keypool::RateLimitInfo& info, int64_t at_ms);

}  // namespace kpm::providers
