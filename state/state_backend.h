#pragma once
/// StateBackend: where shared key state is kept between processes. A backend is a
/// small, dumb string store — one entry per key id, its value an opaque text
/// (state/record_codec.h writes it) — with one atomic read-modify-write. All policy
/// (what a transition does, monotone merges, caching, degrading to memory) lives above
/// it, in SharedKeyStateStore, so SQLite and Redis behave alike by construction.
///
/// Not thread-safe: SharedKeyStateStore serialises every call under its own mutex.
/// Calls block (a local file, a loopback round trip); each is bounded by the
/// backend's own timeout, so a store that hangs becomes an error, never a hang.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace kpm::state {

/// One stored entry.
struct Entry {
  std::string id;
  std::string value;
};

class StateBackend {
 public:
  virtual ~StateBackend() = default;

  /// What this store is, for logs and `status`: "sqlite /home/u/.local/state/keypool-mcp/state.db",
  /// "redis 127.0.0.1:6379/0 prefix keypool". No credentials (a redis password is not shown).
  virtual std::string Describe() const = 0;

  /// Connects or opens when not connected yet (or after an error); cheap when it is.
  /// Every other call may call it first.
  virtual Status Open() = 0;

  /// A number that changes after another process wrote an entry. Must not make a
  /// round trip to a remote server on every call (SQLite: PRAGMA data_version, a read
  /// of the shared-memory index; Redis: a counter bumped by a subscriber thread on
  /// each change message). After a reconnect it must differ from every value returned
  /// before, so the caller reloads.
  virtual Result<uint64_t> Version() = 0;

  /// The value of entry `id`, nullopt when there is none.
  virtual Result<std::optional<std::string>> Read(const std::string& id) = 0;

  /// Atomically: reads entry `id` (nullopt if none), calls `fn` with it, stores what
  /// `fn` returns (and refreshes the entry's time to live), tells other processes that
  /// something changed. `fn` may run more than once (optimistic retry); it must depend
  /// only on its argument and on values captured before the call. Returns what was
  /// stored.
  virtual Result<std::string> Update(const std::string& id,
                                     const std::function<std::string(const std::optional<std::string>&)>& fn) = 0;

  /// Every entry.
  virtual Result<std::vector<Entry>> List() = 0;

  /// Removes the entries `ids` (missing ones are fine); returns how many went.
  virtual Result<size_t> Remove(const std::vector<std::string>& ids) = 0;

  /// The per-store secret that key ids are derived from (HMAC key): random bytes
  /// created by the first process that asks, the same for every process after it.
  /// Read from the store on every call (a store that lost it may hold a new one).
  virtual Result<std::string> Secret() = 0;
};

/// How long an entry lives after its last write (Redis TTL; SQLite deletes older
/// entries when it opens): keys no longer in any config go away by themselves.
inline constexpr int64_t kEntryTtlMs = 30LL * 24 * 3600 * 1000;

}  // namespace kpm::state
