#pragma once
/// SharedKeyStateStore: the KeyStateStore every process on one machine (SQLite) or
/// team (Redis) shares. It keeps a cache of each key's record and talks to its
/// backend only when something changed:
///   - reads: the cache, unless the backend's Version() moved (another process
///     wrote), then that key is read again — no round trip per call otherwise;
///   - writes: only on a state transition (cooldown, disable, trial, lease, limit
///     window). A transition runs on the freshest stored record inside the backend's
///     atomic update, so a process that had a stale copy cannot shorten a cooldown or
///     revive a key: the policy's transitions are monotone and always see the newest
///     state. Counters ride along with the next write, or are written once a second.
///   - a backend that fails (unreachable, locked past its timeout, corrupt) makes the
///     store work from its cache with one warning; it tries again every second, and
///     when the backend is back it merges what it learned meanwhile (MergeRecovered)
///     and says so. No call ever fails because of the store.
/// Keys are known to the backend by HMAC-SHA-256(per-store secret, provider, endpoint,
/// key), never by key bytes.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "keypool/key_state_store.h"
#include "state/record_codec.h"
#include "state/state_backend.h"

namespace kpm::state {

/// One stored key, as `status` lists it.
struct ListedKey {
  std::string id;
  StoredRecord stored;
};

class SharedKeyStateStore : public keypool::KeyStateStore {
 public:
  explicit SharedKeyStateStore(std::unique_ptr<StateBackend> backend);
  /// Writes the counters not written yet.
  ~SharedKeyStateStore() override;

  std::string Bind(const keypool::KeyIdentity& key) override;
  const std::string& owner() const override { return owner_; }
  keypool::KeyRecord Load(const std::string& key_id) const override;
  keypool::KeyRecord Update(const std::string& key_id,
                            const std::function<void(keypool::KeyRecord&)>& fn) override;

  std::string Describe() const { return backend_->Describe(); }
  /// True while the backend is out of reach and state is this process's only.
  bool degraded() const;

  // --- for `keypool-mcp status` ---
  /// The store id `key` has on this store (needs the backend: its secret).
  Result<std::string> IdOf(const keypool::KeyIdentity& key);
  /// Every stored key.
  Result<std::vector<ListedKey>> List();
  /// Applies keypool::ResetRecord to entry `id` for every process.
  Status Reset(const std::string& id);
  /// Removes every entry whose id is not in `keep`; returns how many went.
  Result<size_t> Prune(const std::vector<std::string>& keep);

 private:
  struct Cached {
    keypool::KeyIdentity identity;  ///< holds the key in memory only, for the HMAC
    std::string stored_id;          ///< the backend id; empty until the secret is known
    EntryMeta meta;
    keypool::KeyRecord record;      ///< stored state + local counters + in_flight
    uint64_t seen_version = 0;
    bool loaded = false;            ///< record has been read from the backend
    bool existed = false;           ///< the backend had a record for it once
    bool dirty = false;             ///< changed while the backend was out of reach
    uint64_t pending_requests = 0;  ///< counted here, not written yet
    uint64_t pending_failures = 0;
    int64_t flushed_at_ms = 0;
  };

  /// Makes sure the backend is usable (opening, fetching the secret, retrying after
  /// a failure at most once a second, merging after a recovery). False: use the cache.
  bool Reachable() const;
  void Degrade(const std::string& why) const;
  /// Takes `secret` as the store's key id secret: every id is derived again.
  void Rekey(const std::string& secret) const;
  /// Reads entry `c` again when another process may have changed it.
  void Refresh(Cached& c) const;
  /// Runs `fn` on the freshest stored record and writes it; false on failure.
  bool WriteThrough(Cached& c, const std::function<void(keypool::KeyRecord&)>& fn) const;
  std::string StoredId(const keypool::KeyIdentity& key) const;

  std::unique_ptr<StateBackend> backend_;
  std::string owner_;
  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, Cached> cache_;  ///< by Bind() handle
  mutable std::string secret_;                             ///< HMAC key, from the backend
  mutable uint64_t version_ = 0;
  mutable bool degraded_ = false;
  mutable bool ever_reached_ = false;
  mutable int64_t retry_at_ms_ = 0;  ///< steady clock
  mutable bool warned_corrupt_ = false;
};

/// HMAC-SHA-256 of `data` under `secret`, lowercase hex.
std::string HmacSha256Hex(const std::string& secret, const std::string& data);

/// 16 random bytes as hex (owner tokens, store secrets).
std::string RandomHex(size_t bytes);

}  // namespace kpm::state
