#pragma once
/// KeyPool: the keys of one provider and their state (ready / cooling until T /
/// disabled), the pick order and the outcome -> state transitions of SPEC §3.

#include <atomic>
#include <mutex>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/redact.h"
#include "keypool/clock.h"
#include "keypool/key_state_store.h"
#include "keypool/outcome.h"
#include "keypool/policy.h"

namespace kpm::keypool {

/// One configured key. An empty `secret` means "no key" (local servers: no auth header).
struct KeySpec {
  std::string secret;
  std::string label;            ///< "<provider>#<n>" unless the config names it
  std::string account;          ///< keys of one account cool together; empty = own account
  std::string disabled_reason;  ///< non-empty: disabled from the start (e.g. unset $VAR)
  std::string base_url;         ///< the key's own endpoint; empty = the provider's baseUrl
  std::string host;             ///< the host of the endpoint it is sent to, for `status`
  KeyLimits limits;             ///< the key's `limits`, else its provider's
  std::string env_var;          ///< the variable the key came from (`$VAR`); empty otherwise
};

enum class KeyState { kReady, kCoolingDown, kDisabled };
std::string_view KeyStateName(KeyState s);  ///< "ready" | "cooling_down" | "disabled"

/// A read-only view of one key for key_status (SPEC §5). No secret in it.
struct KeySnapshot {
  std::string label;
  std::string fingerprint;
  KeyState state = KeyState::kReady;
  std::string reason;                   ///< why cooling/disabled; empty when ready
  std::optional<int64_t> ready_in_ms;   ///< cooling keys only
  uint64_t requests = 0;
  uint64_t failures = 0;
  std::optional<int> last_status;
  std::string last_error;               ///< scrubbed
  std::optional<int64_t> last_used_ms;  ///< Unix ms
  int in_flight = 0;                    ///< leases out now
  Outcome cause = Outcome::kOk;         ///< the class behind a cooling/disabled state (kAuthError for config-disabled)
  std::string base_url;                 ///< the key's own endpoint; empty = the provider's
};

struct PoolSnapshot {
  std::string provider;
  Strategy strategy = Strategy::kSequential;
  std::optional<std::string> active_key;  ///< "label fingerprint" of the next key tried; nullopt if none usable
  std::vector<KeySnapshot> keys;
};

class KeyPool;

/// A key handed to one attempt. Holds the secret: never log or print it.
///
/// Move-only. A lease from KeyPool::Acquire() goes back to its pool exactly once: by
/// KeyPool::Report(), or, when the attempt ended without one (an exception, an early
/// return), by the destructor as a server_error "internal error: the attempt ended
/// without an outcome", so no key stays "busy" or "trial in flight" until a restart.
/// Leases made by LeaseForCheck() and moved-from leases belong to no pool.
class KeyLease {
 public:
  KeyLease() = default;
  KeyLease(KeyLease&& other) noexcept { *this = std::move(other); }
  KeyLease& operator=(KeyLease&& other) noexcept;
  KeyLease(const KeyLease&) = delete;
  KeyLease& operator=(const KeyLease&) = delete;
  ~KeyLease();

  std::string provider;
  size_t index = 0;
  std::string secret;       ///< empty = send no auth header
  std::string label;
  std::string fingerprint;
  std::string base_url;     ///< the key's own endpoint; empty = the provider's baseUrl
  bool trial = false;       ///< half-open trial after a cooldown
  int64_t leased_at_ms = 0; ///< when Acquire() handed it out: a success counts from then
  std::string Display() const { return label + " " + fingerprint; }
  /// True while the lease still has to be reported to its pool.
  bool outstanding() const { return pool_ != nullptr; }

 private:
  friend class KeyPool;
  KeyPool* pool_ = nullptr;
};

/// Who an attempt's failure is blamed on. A 5xx, network error or timeout that repeats
/// on a second key of one endpoint in one call is the endpoint's (SPEC §3 "Not the
/// key's fault"): counters record it, the key's state does not change.
enum class Fault { kKey, kEndpoint };

/// "41s", "2m 5s", "1h 0m": a wait as a person reads it (rounded up to whole seconds).
std::string FormatDurationMs(int64_t ms);

/// What `r` shows at `now` (state, reason, ready-in, counters; no label or
/// fingerprint): the one reading of a record, for pools and for `status`. `me`: the
/// store owner reading it (its own holds count until released); "" for an outsider.
KeySnapshot SnapshotOf(const KeyRecord& r, const KeyLimits& limits, int64_t now, const std::string& me = "");

/// `status --reset`: the manual "I fixed it" switch. Ends the key's cooldown and its
/// disabled state (and streaks, trial, limit windows) as of `now`; counters stay.
/// A cause seen before `now` by a process that did not know of the reset cannot
/// bring the state back (reset_at_ms).
void ResetRecord(KeyRecord& r, int64_t now);

/// The keys of one provider and their state. Implements SPEC §3's outcome -> key
/// transitions (extend-only cooldowns, exponential 429 cooldown, account-wide cooling,
/// half-open trials, maxInFlight) and the pick order of its strategy.
///
/// Thread-safe: many calls share one pool. Each key's state changes atomically in the
/// KeyStateStore and every call sees it; no lock is held while a lease is out, so an
/// upstream request never runs under a lock. Every lease from Acquire() must be
/// returned through exactly one Report().
class KeyPool {
 public:
  /// An empty `keys` gives one keyless entry labelled `provider`, fingerprint
  /// "(no key)" and an empty secret (local servers). `clock` must outlive the pool.
  /// `store` defaults to a private InMemoryKeyStateStore.
  KeyPool(std::string provider, std::vector<KeySpec> keys, FailoverPolicy policy, Clock& clock,
          std::shared_ptr<KeyStateStore> store = nullptr);

  const std::string& provider() const { return provider_; }
  const FailoverPolicy& policy() const { return policy_; }
  size_t size() const { return keys_.size(); }
  Clock& clock() const { return clock_; }

  ~KeyPool();

  /// The index a call starts its walk at: 0 for sequential; for round-robin a
  /// rotating start, advanced once per call; for sticky this process's key (chosen
  /// on first use: the ready key the fewest processes stick to, then the least used).
  size_t NextStart();

  /// Leases the first usable key at or after `start` in configured order (wrapping),
  /// skipping indices where `exclude[i]` is true (`exclude` may be shorter than
  /// size()). Usable: not disabled, not cooling, under maxInFlight; a key whose
  /// cooldown has ended is handed to exactly one caller as a trial (lease.trial).
  /// nullopt when nothing is usable now.
  std::optional<KeyLease> Acquire(size_t start, const std::vector<bool>& exclude = {});

  /// Returns a lease from Acquire() and applies the attempt's outcome to the key
  /// (counters always; state per SPEC §3 unless `fault` is kEndpoint). A server_error
  /// changes no state here: the failover loop decides at the end of the call
  /// (RecordServerErrorStrike). A lease that is not outstanding changes nothing.
  /// Returns the key as it stands afterwards.
  KeySnapshot Report(KeyLease& lease, const AttemptOutcome& outcome, Fault fault = Fault::kKey);

  /// Keys share an endpoint when their base_url is the same (empty = the provider's).
  /// Endpoints are numbered 0.. in order of first appearance.
  size_t endpoint(size_t index) const { return keys_[index].endpoint; }
  size_t endpoint_count() const { return endpoint_count_; }

  /// This key alone answered 5xx in a call that another key of the pool then answered.
  /// The second such call in a row (without a success of the key in between) cools
  /// the key for errorCooldownMs (doubling while it keeps failing).
  void RecordServerErrorStrike(size_t index, int status);

  /// When the earliest key that is cooling or busy (trial out, at maxInFlight) may be
  /// leasable again, in Unix ms; nullopt if every key is disabled or ready.
  std::optional<int64_t> NextAvailableMs() const;

  /// A lease for a health check: does not count as in flight and needs no Report().
  /// Its leased_at_ms is now: pass it back to ApplyHealthCheck.
  KeyLease LeaseForCheck(size_t index) const;

  /// Applies a health check's result. A pass makes an auth_error-disabled key ready
  /// and a quota-cooled key ready only if `credit_known_positive`, and only when the
  /// check started (`started_ms`) after the state's cause: a slow pass never revives
  /// a key another process disabled meanwhile. A failure applies the outcome's
  /// transition, except that network errors, timeouts and 5xx change nothing. Keys
  /// disabled by configuration (unset $VAR) are never changed.
  void ApplyHealthCheck(size_t index, const AttemptOutcome& outcome, bool credit_known_positive,
                        int64_t started_ms);

  /// Where the pool stands now; active_key is the key the next call would try first.
  PoolSnapshot Snapshot() const;
  KeySnapshot SnapshotKey(size_t index) const;

  /// `text` with every key value of this pool removed (see Scrubber).
  std::string Scrub(std::string_view text) const { return scrubber_.Scrub(text); }

 private:
  struct Key {
    KeySpec spec;
    std::string fingerprint;
    std::string store_id;
    size_t endpoint = 0;
  };

  KeyLease MakeLease(size_t index, bool trial) const;
  KeySnapshot ToSnapshot(size_t index, const KeyRecord& record, int64_t now) const;
  bool Leasable(size_t index, const KeyRecord& record, int64_t now) const;
  /// Extends the cooldown of every other key of `index`'s account to `until`.
  void CoolAccount(size_t index, int64_t until, Outcome cause);
  /// Sticky: picks and registers this process's key; returns its index.
  size_t ChooseStickyKey();
  /// Sticky: moves this process's hold to `index` (or renews it there).
  void StickTo(size_t index, int64_t now);
  /// Sticky: drops this process's hold on `index`.
  void Unstick(size_t index);

  std::string provider_;
  std::vector<Key> keys_;
  FailoverPolicy policy_;
  Clock& clock_;
  std::shared_ptr<KeyStateStore> store_;
  Scrubber scrubber_;
  size_t endpoint_count_ = 0;
  std::atomic<uint64_t> rr_cursor_{0};
  static constexpr size_t kNoKey = static_cast<size_t>(-1);
  std::atomic<size_t> sticky_{kNoKey};   ///< this process's key (strategy sticky)
  std::atomic<int64_t> sticky_until_{0};  ///< when its hold there needs renewing
  std::mutex sticky_mu_;                  ///< one chooser or mover at a time
};

}  // namespace kpm::keypool
