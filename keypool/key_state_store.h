#pragma once
/// KeyStateStore: where the mutable state of each key lives. The policy code in
/// KeyPool only reads records and applies read-modify-write updates, so a later store
/// can share state between processes (a file) or machines (Redis) without touching it.

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "keypool/outcome.h"

namespace kpm::keypool {

/// The mutable state of one key. Plain data, so any store can serialise it.
struct KeyRecord {
  bool disabled = false;           ///< auth error (until a passing health check)
  int64_t cooling_until_ms = 0;    ///< Unix ms; the key is cooling while now < this
  bool cooling = false;            ///< a cooldown was set and has not been closed by a success
  bool trial_in_flight = false;    ///< the half-open trial after the cooldown is out
  Outcome cause = Outcome::kOk;    ///< the class that cooled or disabled the key
  std::string reason;              ///< why it is cooling/disabled (scrubbed)
  int rate_limit_streak = 0;       ///< consecutive rate_limited, for the doubling
  int error_streak = 0;            ///< consecutive cooldowns for network/timeout/5xx
  int server_error_strikes = 0;    ///< consecutive calls where this key alone had a 5xx
  int in_flight = 0;               ///< leases out now (trial included)

  uint64_t requests = 0;
  uint64_t failures = 0;           ///< every non-ok attempt except caller cancellations
  std::optional<int> last_status;
  std::string last_error;          ///< scrubbed
  std::optional<int64_t> last_used_ms;
};

/// Abstract so the state can move out of the process later (file store, Redis).
/// Thread-safe: every method may be called concurrently.
class KeyStateStore {
 public:
  virtual ~KeyStateStore() = default;
  /// A copy of the record of `key_id` (a default record if it has none yet).
  virtual KeyRecord Load(const std::string& key_id) const = 0;
  /// Atomically reads the record of `key_id`, lets `fn` modify it and stores it back;
  /// returns the stored record. A remote store may run `fn` more than once (optimistic
  /// retry), so `fn` must depend only on the record it is given and on values it
  /// captured before the call.
  virtual KeyRecord Update(const std::string& key_id, const std::function<void(KeyRecord&)>& fn) = 0;
};

/// The process-local store: one mutex over a map. Critical sections are a few field
/// updates, never an upstream request.
class InMemoryKeyStateStore : public KeyStateStore {
 public:
  KeyRecord Load(const std::string& key_id) const override;
  KeyRecord Update(const std::string& key_id, const std::function<void(KeyRecord&)>& fn) override;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, KeyRecord> records_;
};

}  // namespace kpm::keypool
