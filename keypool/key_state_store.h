#pragma once
/// KeyStateStore: where the mutable state of each key lives. The policy code in
/// KeyPool only reads records and applies read-modify-write updates (transitions), so
/// a store can share them between processes (state/: SQLite, Redis) without touching
/// the policy: every transition runs on the freshest record inside the store's atomic
/// section, and the transitions themselves are monotone (docs/state.md).

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "keypool/outcome.h"

namespace kpm::keypool {

/// A lease held by one process, with an expiry so a crashed process cannot hold it.
struct Hold {
  std::string owner;     ///< KeyStateStore::owner() of the process that holds it
  int64_t until_ms = 0;  ///< Unix ms; ignored once passed
};

/// A request/token counting window: it opens at its first use and lasts its length
/// (a minute for rpm/tpm, a day for rpd).
struct Window {
  int64_t start_ms = 0;
  int64_t used = 0;
};

/// The state of one key. Everything but `in_flight` is shared by every process on
/// the store; plain data, so any store can serialise it (state/record_codec.cc).
struct KeyRecord {
  bool disabled = false;           ///< auth error (until a passing health check or a reset)
  int64_t disabled_at_ms = 0;      ///< when it was disabled
  int64_t cooling_until_ms = 0;    ///< Unix ms; the key is cooling while now < this
  bool cooling = false;            ///< a cooldown was set and has not been closed by a success
  int64_t cause_at_ms = 0;         ///< when the cooldown's cause was seen
  Outcome cause = Outcome::kOk;    ///< the class that cooled or disabled the key
  std::string reason;              ///< why it is cooling/disabled (scrubbed)
  int rate_limit_streak = 0;       ///< consecutive rate_limited, for the doubling
  int error_streak = 0;            ///< consecutive cooldowns for network/timeout/5xx
  int server_error_strikes = 0;    ///< consecutive calls where this key alone had a 5xx
  Hold trial;                      ///< the half-open trial after a cooldown, while until_ms is ahead
  std::vector<Hold> leases;        ///< in-flight leases of every process (kept only with maxInFlight)
  std::vector<Hold> sticky;        ///< processes whose sticky key this is (strategy sticky)
  Window minute;                   ///< requests this minute (limits.rpm)
  Window day;                      ///< requests this day (limits.rpd)
  Window minute_tokens;            ///< tokens this minute (limits.tpm)
  RateLimitInfo last_limits;       ///< the last rate-limit figures the upstream sent
  int64_t reset_at_ms = 0;         ///< the last `status --reset`: older causes do not come back

  uint64_t requests = 0;
  uint64_t failures = 0;           ///< every non-ok attempt except caller cancellations
  std::optional<int> last_status;
  std::string last_error;          ///< scrubbed
  std::optional<int64_t> last_used_ms;

  int in_flight = 0;               ///< this process's leases out now (never shared)
};

/// What a store knows of a key besides its record (never the key): for `status`.
struct KeyIdentity {
  std::string provider;
  std::string label;     ///< per process: not stored by a shared store
  std::string base_url;  ///< the key's endpoint; empty = the provider's
  std::string host;      ///< the endpoint's host, for `status`
  std::string secret;    ///< the key; only hashed (HMAC) by a shared store, never kept
  size_t index = 0;      ///< its place in the provider's list
};

/// Thread-safe: every method may be called concurrently.
class KeyStateStore {
 public:
  virtual ~KeyStateStore() = default;
  /// The id this store keeps `key`'s record under. A shared store derives it from the
  /// key bytes with a keyed hash, so every process with that key finds one record and
  /// a replaced key starts clean.
  virtual std::string Bind(const KeyIdentity& key) = 0;
  /// Who this process is to the store (trial and lease holders). Unique per store object.
  virtual const std::string& owner() const = 0;
  /// A copy of the record of `key_id` (a default record if it has none yet).
  virtual KeyRecord Load(const std::string& key_id) const = 0;
  /// Atomically reads the record of `key_id`, lets `fn` modify it and stores it back;
  /// returns the stored record. A shared store may run `fn` more than once (on its
  /// cached copy, then on the freshest record), so `fn` must depend only on the record
  /// it is given and on values it captured before the call, and reset its outputs.
  virtual KeyRecord Update(const std::string& key_id, const std::function<void(KeyRecord&)>& fn) = 0;
};

/// The process-local store (`state: none`): one mutex over a map. Critical sections
/// are a few field updates, never an upstream request.
class InMemoryKeyStateStore : public KeyStateStore {
 public:
  std::string Bind(const KeyIdentity& key) override;
  const std::string& owner() const override { return owner_; }
  KeyRecord Load(const std::string& key_id) const override;
  KeyRecord Update(const std::string& key_id, const std::function<void(KeyRecord&)>& fn) override;

 private:
  const std::string owner_ = "this process";
  mutable std::mutex mu_;
  std::unordered_map<std::string, KeyRecord> records_;
};

}  // namespace kpm::keypool
