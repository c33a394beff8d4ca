#pragma once
/// Per-provider failover policy: SPEC §2's `strategy`, `deadlineMs` and `failover` block.

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/name_table.h"

namespace kpm::keypool {

enum class Strategy { kSequential, kRoundRobin };
/// The config and key_status spelling of each Strategy, in enum order.
inline constexpr std::string_view kStrategyNames[] = {"sequential", "round-robin"};
/// "sequential" | "round-robin"
inline std::string_view StrategyName(Strategy s) { return NameOf(kStrategyNames, s); }
/// The Strategy spelled `name` (one of kStrategyNames), or nullopt.
inline std::optional<Strategy> ParseStrategy(std::string_view name) { return FromName<Strategy>(kStrategyNames, name); }

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
