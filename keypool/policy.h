#pragma once
/// Per-provider failover policy: SPEC §2's `strategy`, `deadlineMs` and `failover` block.

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/name_table.h"

namespace kpm::keypool {

/// kSticky: each process keeps one key (the least used ready one when it starts) until
/// that key fails; needs shared state so processes spread over the keys.
enum class Strategy { kSequential, kRoundRobin, kSticky };
/// The config and key_status spelling of each Strategy, in enum order.
inline constexpr std::string_view kStrategyNames[] = {"sequential", "round-robin", "sticky"};
/// "sequential" | "round-robin" | "sticky"
inline std::string_view StrategyName(Strategy s) { return NameOf(kStrategyNames, s); }
/// The Strategy spelled `name` (one of kStrategyNames), or nullopt.
inline std::optional<Strategy> ParseStrategy(std::string_view name) { return FromName<Strategy>(kStrategyNames, name); }

/// `limits` (SPEC §2): what a key may use, counted across every process on the store.
/// 0 = no limit. Windows open at their first request (docs/state.md).
struct KeyLimits {
  int64_t rpm = 0;  ///< requests per minute
  int64_t rpd = 0;  ///< requests per day
  int64_t tpm = 0;  ///< tokens (input + output) per minute
  bool any() const { return rpm > 0 || rpd > 0 || tpm > 0; }
};

struct FailoverPolicy {
  Strategy strategy = Strategy::kSequential;
  int64_t rate_limit_cooldown_ms = 1000;      ///< first 429 cooldown without a hint; doubles
  int64_t rate_limit_cooldown_max_ms = 60000;
  int64_t quota_cooldown_ms = 3600000;
  int64_t error_cooldown_ms = 5000;           ///< network, timeout, repeated 5xx
  int server_error_retries = 1;               ///< further server_error attempts per call
  int64_t backoff_ms = 250;                   ///< wait before retrying after a server_error
  int64_t max_wait_ms = 0;                    ///< wait for a cooling key instead of failing
  int max_in_flight = 0;                      ///< per-key concurrency cap; 0 = none
  int64_t deadline_ms = 120000;               ///< the whole call
};

}  // namespace kpm::keypool
