#pragma once
/// How a KeyRecord is written in a shared store: one JSON object per key, with what
/// `status` needs to show it (provider, endpoint host). Never a key, a label or a
/// fingerprint (which holds key characters): a key is known by its keyed hash only.

#include <optional>
#include <string>

#include "common/result.h"
#include "keypool/key_state_store.h"

namespace kpm::state {

/// What a stored entry holds besides the record.
struct EntryMeta {
  std::string provider;
  std::string host;
  int64_t updated_ms = 0;  ///< the last write
};

struct StoredRecord {
  EntryMeta meta;
  keypool::KeyRecord record;  ///< in_flight (process-local) is always 0 here
};

/// The JSON text of `r` (its shared part) and `meta`.
std::string EncodeRecord(const keypool::KeyRecord& r, const EntryMeta& meta);

/// Reads what EncodeRecord wrote. Unknown fields are ignored and missing ones take
/// their defaults, so versions can differ; text that is not such an object is an
/// error (kInvalidArgument), which the caller treats as a corrupt store.
Result<StoredRecord> DecodeRecord(const std::string& text);

/// True when `a` and `b` differ only in what a call changes every time — counters,
/// the last status, use and rate-limit figures (which every OpenAI or Anthropic answer
/// changes: they drive no decision), the process-local in_flight — so a store can skip
/// the write and carry them with the next one.
bool SameState(const keypool::KeyRecord& a, const keypool::KeyRecord& b);

/// After the store was out of reach: `stored` (what the store holds now) with what
/// this process learned meanwhile (`local`) merged in monotonically — a cooldown only
/// extends, a disabled key stays disabled, the newer of two causes wins — except
/// what a `status --reset` newer than the local cause cleared.
keypool::KeyRecord MergeRecovered(const keypool::KeyRecord& stored, const keypool::KeyRecord& local);

/// The last use (time, status, rate-limit figures) of `local` into `stored` when it is
/// newer: what a process saw last but did not write.
void KeepNewerUse(keypool::KeyRecord& stored, const keypool::KeyRecord& local);

}  // namespace kpm::state
