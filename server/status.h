#pragma once
/// `keypool-mcp status`: the shared key state as every process sees it, read from the
/// store the config names (docs/state.md). Labels and fingerprints come from this
/// config where it knows the key; a key it does not know shows its store id.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "server/config.h"
#include "state/shared_store.h"

namespace kpm::server {

/// One stored key, as `status` shows it.
struct StatusRow {
  std::string provider;
  std::string label;        ///< empty: not in this config
  std::string fingerprint;  ///< from this config; else "#" and the start of the store id
  std::string id;
  std::string host;
  keypool::KeySnapshot key;
  keypool::KeyLimits limits;  ///< this config's; zero when unknown
  keypool::KeyRecord record;
};

/// Every key in the store, the ones this config names first in config order.
Result<std::vector<StatusRow>> ReadStatus(const Config& config, state::SharedKeyStateStore& store);

/// The table people read.
std::string RenderStatusTable(const std::vector<StatusRow>& rows, const std::string& store_name);
nlohmann::json StatusToJson(const std::vector<StatusRow>& rows, const std::string& store_name);

/// The store ids of `which` (a label, a fingerprint, or a store id or its first 8+
/// characters); a kNotFound error listing what exists when nothing matches.
Result<std::vector<std::string>> ResolveKey(const std::vector<StatusRow>& rows, const std::string& which);

/// The store ids of every key this config names (for --prune).
Result<std::vector<std::string>> ConfiguredIds(const Config& config, state::SharedKeyStateStore& store);

}  // namespace kpm::server
