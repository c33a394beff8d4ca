#pragma once
/// `keypool-mcp --check`: the verdict on every key from App::CheckKeys, built once
/// (pure, no I/O) and rendered for people (text) or programs (`--check --json`).
///
/// Text layout (docs/configuration.md, "--check"): the verdict first, one line per
/// provider (`ok    openai: 2 of 3 keys usable` / `FAIL  down: no usable key ...`),
/// then one row per key with what the check found (CHECK) beside the key's pool state
/// afterwards (STATE). A key the check could not judge (network error, timeout, 5xx)
/// keeps its pool state, but is shown as `unverified`, never `ready`: the table never
/// says `ready` for a key that did not count as usable.

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/app.h"

namespace kpm::server {

struct CheckReportKey {
  std::string label;
  std::string fingerprint;
  keypool::KeyState state = keypool::KeyState::kReady;  ///< in the pool, after the check
  std::optional<int64_t> ready_in_ms;                     ///< cooling keys only
  bool checked = false;                                   ///< false: nothing to check (unset $VAR...)
  std::string outcome;                                    ///< a class of SPEC §3, or "skipped"
  std::string detail;                                     ///< scrubbed
  bool usable = false;  ///< checked, answered ok, and not disabled
};

struct CheckReportProvider {
  std::string name;
  bool usable = false;  ///< at least one usable key
  std::vector<CheckReportKey> keys;
};

struct CheckReport {
  bool ok = false;  ///< every provider usable: exit 0
  std::vector<CheckReportProvider> providers;
};

/// `providers`: every provider name, in config order; `checks`: App::CheckKeys("").
/// A provider with no check at all is not usable.
CheckReport BuildCheckReport(const std::vector<std::string>& providers, const std::vector<KeyCheck>& checks);

/// For people: verdict lines, a blank line, the key table, a legend line.
std::string RenderCheckText(const CheckReport& report);

/// For programs: {ok, providers: [{name, usable, usable_keys, keys: [{label, fingerprint,
/// state, ready_in_ms?, checked, outcome, detail, usable}]}]}. `state` is the raw pool
/// state ("ready" included): `usable` is the verdict.
nlohmann::json CheckReportToJson(const CheckReport& report);

/// CheckReportToJson as text, pretty-printed, ending in a newline (invalid UTF-8 in a
/// detail replaced, never a throw).
std::string RenderCheckJson(const CheckReport& report);

}  // namespace kpm::server
