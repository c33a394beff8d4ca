#pragma once
/// The outcome classes of SPEC §3: what one attempt with one key came to. Providers
/// produce them from HTTP answers; the key pool decides what each means for the key.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kpm::keypool {

enum class Outcome {
  kOk,
  kRateLimited,
  kQuotaExhausted,
  kAuthError,
  kServerError,
  kNetworkError,
  kTimeout,
  kContextTooLong,
  kBadRequest,
  kCancelled,  ///< the caller cancelled: changes no key's state
};

/// Wire spelling: "ok", "rate_limited", "quota_exhausted", "auth_error", "server_error",
/// "network_error", "timeout", "context_too_long", "bad_request", "cancelled".
std::string_view OutcomeName(Outcome outcome);

/// What one answer (of any status) said about the key's limits. All times are
/// absolute, in Unix milliseconds, already resolved against the clock by the parser.
struct RateLimitInfo {
  std::optional<int64_t> retry_at_ms;  ///< do not use the key before this
  std::optional<int64_t> requests_remaining;
  std::optional<int64_t> requests_reset_at_ms;
  std::optional<int64_t> tokens_remaining;
  std::optional<int64_t> tokens_reset_at_ms;
};

/// The result of one attempt, as the failover loop sees it.
struct AttemptOutcome {
  Outcome outcome = Outcome::kOk;
  int status = 0;           ///< HTTP status; 0 when there was none (network, timeout)
  std::string message;      ///< short and human; scrubbed of key values before use
  RateLimitInfo limits;     ///< hints from headers or body; empty when none
  int64_t tokens = 0;       ///< tokens the attempt used (input + output), when known
};

}  // namespace kpm::keypool
