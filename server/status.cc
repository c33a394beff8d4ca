#include "server/status.h"

#include <algorithm>
#include <chrono>

#include "common/redact.h"
#include "keypool/key_pool.h"
#include "providers/base_url.h"
#include "server/config_document.h"
#include "server/pool_view.h"

namespace kpm::server {
namespace {

using Json = nlohmann::json;

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Every configured key with its identity, in config order (keyless providers too).
struct Known {
  keypool::KeyIdentity identity;
  std::string fingerprint;
  keypool::KeyLimits limits;
  std::string disabled_reason;
};

std::vector<Known> ConfiguredKeys(const Config& config) {
  std::vector<Known> out;
  for (const auto& pc : config.providers) {
    if (pc.keys.empty()) {
      Known keyless;
      keyless.identity.provider = pc.name;
      keyless.identity.label = pc.name;
      keyless.identity.host = providers::UrlHost(pc.base_url);
      keyless.fingerprint = Fingerprint("");
      keyless.limits = pc.limits;
      out.push_back(std::move(keyless));
    }
    for (size_t i = 0; i < pc.keys.size(); ++i) {
      const auto& k = pc.keys[i];
      Known known;
      known.identity = keypool::KeyIdentity{pc.name, k.label, k.base_url, k.host, k.secret, i};
      known.fingerprint = Fingerprint(k.secret);
      known.limits = k.limits;
      known.disabled_reason = k.disabled_reason;
      out.push_back(std::move(known));
    }
  }
  return out;
}

std::string ShortId(const std::string& id) {
  size_t colon = id.find(':');
  std::string hash = colon == std::string::npos ? id : id.substr(colon + 1);
  return std::string("#").append(hash.substr(0, 8));
}

std::string LimitUse(const StatusRow& row, int64_t now) {
  std::string out;
  auto add = [&](const char* name, const keypool::Window& w, int64_t length, int64_t limit) {
    if (limit <= 0) return;
    int64_t used = w.start_ms > 0 && now < w.start_ms + length ? w.used : 0;
    if (!out.empty()) out.append(" ");
    out.append(name).append(" ").append(std::to_string(used)).append("/").append(std::to_string(limit));
  };
  add("rpm", row.record.minute, 60000, row.limits.rpm);
  add("tpm", row.record.minute_tokens, 60000, row.limits.tpm);
  add("rpd", row.record.day, 86400000, row.limits.rpd);
  return out;
}

}  // namespace

Result<std::vector<StatusRow>> ReadStatus(const Config& config, state::SharedKeyStateStore& store) {
  Result<std::vector<state::ListedKey>> listed = store.List();
  if (!listed) return listed.error();
  const int64_t now = WallMs();
  std::vector<StatusRow> rows;
  std::vector<bool> used(listed->size(), false);
  for (const Known& k : ConfiguredKeys(config)) {
    Result<std::string> id = store.IdOf(k.identity);
    if (!id) return id.error();
    StatusRow row;
    row.provider = k.identity.provider;
    row.label = k.identity.label;
    row.fingerprint = k.fingerprint;
    row.id = *id;
    row.host = k.identity.host;
    row.limits = k.limits;
    for (size_t i = 0; i < listed->size(); ++i) {
      if ((*listed)[i].id == *id) {
        used[i] = true;
        row.record = (*listed)[i].stored.record;
      }
    }
    row.key = keypool::SnapshotOf(row.record, row.limits, now);
    if (!k.disabled_reason.empty()) {
      row.key.state = keypool::KeyState::kDisabled;
      row.key.reason = k.disabled_reason;
      row.key.ready_in_ms.reset();
    }
    rows.push_back(std::move(row));
  }
  for (size_t i = 0; i < listed->size(); ++i) {
    if (used[i]) continue;
    const state::ListedKey& l = (*listed)[i];
    StatusRow row;
    row.provider = l.stored.meta.provider;
    row.fingerprint = ShortId(l.id);
    row.id = l.id;
    row.host = l.stored.meta.host;
    row.record = l.stored.record;
    row.key = keypool::SnapshotOf(row.record, row.limits, now);
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string RenderStatusTable(const std::vector<StatusRow>& rows, const std::string& store_name) {
  const int64_t now = WallMs();
  std::vector<std::vector<std::string>> cells = {
      {"PROVIDER", "KEY", "FINGERPRINT", "ENDPOINT", "STATE", "READY IN", "REQ/FAIL", "LIMITS", "REASON"}};
  for (const StatusRow& r : rows) {
    std::string ready = r.key.ready_in_ms ? keypool::FormatDurationMs(*r.key.ready_in_ms) : "";
    cells.push_back({r.provider, r.label.empty() ? "(not in this config)" : r.label, r.fingerprint, r.host,
                     std::string(keypool::KeyStateName(r.key.state)), ready,
                     std::to_string(r.key.requests) + "/" + std::to_string(r.key.failures), LimitUse(r, now),
                     r.key.reason});
  }
  std::string out = "state: " + store_name + "\n" + RenderTable(cells);
  if (rows.empty()) out += "(no keys)\n";
  return out;
}

Json StatusToJson(const std::vector<StatusRow>& rows, const std::string& store_name) {
  const int64_t now = WallMs();
  Json keys = Json::array();
  for (const StatusRow& r : rows) {
    Json k{{"provider", r.provider},
           {"fingerprint", r.fingerprint},
           {"id", r.id},
           {"endpoint", r.host},
           {"state", keypool::KeyStateName(r.key.state)},
           {"requests", r.key.requests},
           {"failures", r.key.failures},
           {"processes_sticking", static_cast<int>(std::count_if(r.record.sticky.begin(), r.record.sticky.end(),
                                                                  [now](const keypool::Hold& h) { return h.until_ms > now; }))}};
    k["label"] = r.label.empty() ? Json(nullptr) : Json(r.label);
    if (!r.key.reason.empty()) k["reason"] = r.key.reason;
    if (r.key.ready_in_ms) k["ready_in_ms"] = *r.key.ready_in_ms;
    if (r.key.last_status) k["last_status"] = *r.key.last_status;
    if (r.key.last_used_ms) k["last_used_ms"] = *r.key.last_used_ms;
    if (!r.key.last_error.empty()) k["last_error"] = r.key.last_error;
    Json limits = Json::object();
    auto add = [&](const char* name, const keypool::Window& w, int64_t length, int64_t limit) {
      if (limit <= 0) return;
      int64_t used = w.start_ms > 0 && now < w.start_ms + length ? w.used : 0;
      limits[name] = Json{{"used", used}, {"limit", limit}};
    };
    add("rpm", r.record.minute, 60000, r.limits.rpm);
    add("tpm", r.record.minute_tokens, 60000, r.limits.tpm);
    add("rpd", r.record.day, 86400000, r.limits.rpd);
    if (!limits.empty()) k["limits"] = std::move(limits);
    keys.push_back(std::move(k));
  }
  return Json{{"state", store_name}, {"keys", std::move(keys)}};
}

Result<std::vector<std::string>> ResolveKey(const std::vector<StatusRow>& rows, const std::string& which) {
  std::vector<std::string> ids;
  std::string bare = which.size() > 1 && which[0] == '#' ? which.substr(1) : which;
  for (const StatusRow& r : rows) {
    size_t colon = r.id.find(':');
    std::string hash = colon == std::string::npos ? r.id : r.id.substr(colon + 1);
    bool match = (!r.label.empty() && r.label == which) || r.fingerprint == which || r.id == which ||
                 (bare.size() >= 8 && hash.rfind(bare, 0) == 0);
    if (match && std::find(ids.begin(), ids.end(), r.id) == ids.end()) ids.push_back(r.id);
  }
  if (ids.empty()) {
    std::string known;
    for (const StatusRow& r : rows) known += (known.empty() ? "" : ", ") + (r.label.empty() ? r.fingerprint : r.label);
    return MakeError(ErrorKind::kNotFound, "no key " + QuoteForMessage(which) + " in the store (keys: " +
                                               (known.empty() ? "none" : known) + ")");
  }
  return ids;
}

Result<std::vector<std::string>> ConfiguredIds(const Config& config, state::SharedKeyStateStore& store) {
  std::vector<std::string> ids;
  for (const Known& k : ConfiguredKeys(config)) {
    Result<std::string> id = store.IdOf(k.identity);
    if (!id) return id.error();
    ids.push_back(*id);
  }
  return ids;
}

}  // namespace kpm::server
