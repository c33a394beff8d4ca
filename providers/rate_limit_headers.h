#pragma once
/// Vendor rate-limit headers: pure parsers for the headers and body fields in which
/// providers say when a key may be used again (PROVIDERS.md), turned into the
/// keypool's RateLimitInfo. Garbage in gives "no hint" (nullopt or an empty field),
/// never a crash. No clock: the caller passes `now_ms`.

#include <cstdint>
#include <optional>
#include <string_view>

#include "keypool/outcome.h"
#include "providers/http_client.h"

namespace kpm::providers {

/// Hints further out than this are treated as garbage (a week, in ms).
inline constexpr int64_t kMaxHintMs = 7LL * 24 * 3600 * 1000;

/// Go-style duration as in OpenAI's x-ratelimit-reset-*: "1s", "6m0s", "250ms",
/// "1h2m3.5s", "2m52.8s" (units h, m, s, ms, us/µs, ns; decimals allowed). A bare
/// number is seconds (Azure sends "64"). Rounded up to whole ms. Negative -> nullopt.
std::optional<int64_t> ParseGoDurationMs(std::string_view text);

/// Protobuf Duration JSON form, e.g. Gemini RetryInfo.retryDelay: "35s", "0.2s".
std::optional<int64_t> ParseProtobufDurationMs(std::string_view text);

/// HTTP-date (RFC 9110 IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT"; the obsolete
/// RFC 850 and asctime forms too) as Unix ms.
std::optional<int64_t> ParseHttpDateMs(std::string_view text);

/// RFC 3339 timestamp ("2026-08-21T12:00:30Z", fractions and ±hh:mm offsets) as Unix ms.
std::optional<int64_t> ParseRfc3339Ms(std::string_view text);

/// Retry-After value: delta seconds (float allowed) or an HTTP-date; absolute Unix ms.
std::optional<int64_t> ParseRetryAfter(std::string_view value, int64_t now_ms);

/// Everything the response headers say about the key's limits, times resolved to
/// absolute Unix ms: retry-after-ms, retry-after; OpenAI x-ratelimit-{remaining,reset}-
/// {requests,tokens}; Anthropic anthropic-ratelimit-{requests,tokens,input-tokens,
/// output-tokens}-{remaining,reset} (the token figure is the tightest of the three);
/// OpenRouter x-ratelimit-remaining / x-ratelimit-reset (epoch ms). Header names are
/// matched case-insensitively. Empty when there are none.
keypool::RateLimitInfo ParseRateLimitHeaders(const Headers& headers, int64_t now_ms);

/// Sets `info.retry_at_ms` to `at_ms` unless it already names a later time
/// (hints only ever push the retry time out).
void ExtendRetryAt(keypool::RateLimitInfo& info, int64_t at_ms);

}  // namespace kpm::providers
