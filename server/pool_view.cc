#include "server/pool_view.h"

#include <algorithm>
#include <sstream>

#include "providers/base_url.h"

namespace kpm::server {

using Json = nlohmann::json;

Json KeyToJson(const keypool::KeySnapshot& key, const std::string& provider_base_url) {
  Json j = {{"label", key.label},
            {"fingerprint", key.fingerprint},
            {"endpoint", providers::UrlHost(key.base_url.empty() ? provider_base_url : key.base_url)},
            {"state", std::string(keypool::KeyStateName(key.state))},
            {"requests", key.requests},
            {"failures", key.failures}};
  if (!key.reason.empty()) j["reason"] = key.reason;
  if (key.ready_in_ms) j["ready_in_ms"] = *key.ready_in_ms;
  if (key.last_status) j["last_status"] = *key.last_status;
  if (!key.last_error.empty()) j["last_error"] = key.last_error;
  if (key.last_used_ms) j["last_used"] = *key.last_used_ms;
  return j;
}

Json PoolToJson(const PoolView& view) {
  Json keys = Json::array();
  for (const auto& k : view.snapshot.keys) keys.push_back(KeyToJson(k, view.base_url));
  return {{"name", view.snapshot.provider},
          {"type", view.type},
          {"model", view.model.empty() ? Json(nullptr) : Json(view.model)},
          {"strategy", std::string(keypool::StrategyName(view.snapshot.strategy))},
          {"active_key", view.snapshot.active_key ? Json(*view.snapshot.active_key) : Json(nullptr)},
          {"keys", keys}};
}

Json AttemptsToJson(const std::vector<keypool::AttemptRecord>& attempts) {
  Json out = Json::array();
  for (const auto& a : attempts) {
    Json j = {{"provider", a.provider},
              {"key", a.key},
              {"outcome", std::string(keypool::OutcomeName(a.outcome))},
              {"elapsed_ms", a.elapsed_ms}};
    if (a.status != 0) j["status"] = a.status;
    if (!a.message.empty()) j["message"] = a.message;
    out.push_back(std::move(j));
  }
  return out;
}

std::string RenderTable(const std::vector<std::vector<std::string>>& rows) {
  // Column widths by code points, not bytes: fingerprints contain "…".
  auto width = [](const std::string& s) {
    return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
  };
  if (rows.empty()) return "";
  std::vector<size_t> w(rows.front().size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], width(r[i]));
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size() && i < w.size()) line += std::string(w[i] - width(r[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string RenderPoolsTable(const std::vector<PoolView>& views) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"PROVIDER", "KEY", "FINGERPRINT", "STATE", "REQ", "FAIL", "DETAIL"});
  for (const auto& v : views) {
    for (const auto& k : v.snapshot.keys) {
      std::string state(keypool::KeyStateName(k.state));
      std::string detail = k.reason;
      if (k.ready_in_ms) detail += (detail.empty() ? "" : ", ") + std::string("ready in ") + keypool::FormatDurationMs(*k.ready_in_ms);
      bool active = v.snapshot.active_key && *v.snapshot.active_key == k.label + " " + k.fingerprint;
      rows.push_back({v.snapshot.provider, (active ? "*" : "") + k.label, k.fingerprint, state,
                      std::to_string(k.requests), std::to_string(k.failures), detail});
    }
  }
  std::ostringstream out;
  out << RenderTable(rows);
  out << "(* = the key the next call tries first)\n";
  return out.str();
}

}  // namespace kpm::server
