#pragma once
/// KeyPool: the keys of one provider and their state (ready / cooling until T /
/// disabled), the pick order and the outcome -> state transitions of SPEC §3.
/// CONTRACT DRAFT: the keypool owner may add members; the names below are used by
/// providers/ and server/ and should stay.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keypool/clock.h"
#include "keypool/outcome.h"
#include "keypool/policy.h"

namespace kpm::keypool {

/// One configured key. An empty `secret` means "no key" (local servers: no auth header).
struct KeySpec {
  std::string secret;
  std::string label;            ///< "<provider>#<n>" unless the config names it
  std::string account;          ///< keys of one account cool together; empty = own account
  std::string disabled_reason;  ///< non-empty: disabled from the start (e.g. unset $VAR)
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
  uint64_t successes = 0;
  uint64_t failures = 0;
  std::optional<int> last_status;
  std::string last_error;               ///< scrubbed
  std::optional<int64_t> last_used_ms;  ///< Unix ms
};

struct PoolSnapshot {
  std::string provider;
  Strategy strategy = Strategy::kSequential;
  std::optional<std::string> active_key;  ///< "label fingerprint" of the next key tried; nullopt if none usable
  std::vector<KeySnapshot> keys;
};

/// A key handed to one attempt. Holds the secret: never log or print it.
struct KeyLease {
  std::string provider;
  size_t index = 0;
  std::string secret;       ///< empty = send no auth header
  std::string label;
  std::string fingerprint;
  bool trial = false;       ///< half-open trial after a cooldown
  std::string Display() const { return label + " " + fingerprint; }
};

}  // namespace kpm::keypool
