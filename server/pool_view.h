#pragma once
/// Renders pool snapshots for people and programs: the structuredContent of
/// key_status / check_keys (SPEC §5) and the aligned text table beside it.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "keypool/failover.h"
#include "keypool/key_pool.h"

namespace kpm::server {

struct PoolView {
  std::string type;  ///< provider type name
  keypool::PoolSnapshot snapshot;
  std::string base_url;  ///< the provider's; a key without its own uses it
  std::string model;     ///< what a call that names no model gets; empty: asked from the server
};

/// One key; `endpoint` is the host of its base_url (else of `provider_base_url`).
nlohmann::json KeyToJson(const keypool::KeySnapshot& key, const std::string& provider_base_url);
nlohmann::json PoolToJson(const PoolView& view);
nlohmann::json AttemptsToJson(const std::vector<keypool::AttemptRecord>& attempts);

/// Rows of cells as aligned columns (widths in code points), two spaces apart, one
/// line each, trailing spaces trimmed.
std::string RenderTable(const std::vector<std::vector<std::string>>& rows);

/// A compact table: provider, key, fingerprint, state, requests/failures, reason.
std::string RenderPoolsTable(const std::vector<PoolView>& views);

}  // namespace kpm::server
