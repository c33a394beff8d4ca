#include "server/check_report.h"

#include <algorithm>

#include "server/pool_view.h"

namespace kpm::server {
namespace {

/// The STATE cell: the pool state, except that an unusable key the pool still calls
/// ready (its check got no verdict) is `unverified`.
std::string StateCell(const CheckReportKey& k) {
  if (!k.usable && k.state == keypool::KeyState::kReady) return "unverified";
  return std::string(keypool::KeyStateName(k.state));
}

size_t UsableKeys(const CheckReportProvider& p) {
  return static_cast<size_t>(std::count_if(p.keys.begin(), p.keys.end(), [](const auto& k) { return k.usable; }));
}

std::string Keys(size_t n) { return std::to_string(n) + (n == 1 ? " key" : " keys"); }

}  // namespace

CheckReport BuildCheckReport(const std::vector<std::string>& providers, const std::vector<KeyCheck>& checks) {
  CheckReport report;
  report.ok = true;
  for (const std::string& name : providers) {
    CheckReportProvider p;
    p.name = name;
    for (const KeyCheck& c : checks) {
      if (c.provider != name) continue;
      CheckReportKey k;
      k.label = c.key.label;
      k.fingerprint = c.key.fingerprint;
      k.state = c.key.state;
      k.ready_in_ms = c.key.ready_in_ms;
      k.checked = c.checked;
      k.outcome = c.checked ? std::string(keypool::OutcomeName(c.outcome)) : "skipped";
      k.detail = c.detail == k.outcome ? "" : c.detail;
      // Usable means verified now: a key whose check could not reach its server keeps
      // its state in the pool but does not count.
      k.usable = c.checked && c.outcome == keypool::Outcome::kOk && c.key.state != keypool::KeyState::kDisabled;
      p.usable |= k.usable;
      p.keys.push_back(std::move(k));
    }
    report.ok &= p.usable;
    report.providers.push_back(std::move(p));
  }
  return report;
}

std::string RenderCheckText(const CheckReport& report) {
  std::string out;
  for (const CheckReportProvider& p : report.providers) {
    const size_t usable = UsableKeys(p);
    if (p.usable) {
      out += "ok    " + p.name + ": " + std::to_string(usable) + " of " + Keys(p.keys.size()) + " usable\n";
    } else {
      out += "FAIL  " + p.name + ": no usable key (" + std::to_string(usable) + " of " + Keys(p.keys.size()) +
             " passed the check)\n";
    }
  }
  out += "\n";
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"PROVIDER", "KEY", "FINGERPRINT", "CHECK", "STATE", "DETAIL"});
  for (const CheckReportProvider& p : report.providers) {
    for (const CheckReportKey& k : p.keys) {
      std::string detail = k.detail;
      if (k.ready_in_ms) {
        detail += (detail.empty() ? "" : "; ") + std::string("back in ") + keypool::FormatDurationMs(*k.ready_in_ms);
      }
      rows.push_back({p.name, k.label, k.fingerprint, k.outcome, StateCell(k), detail});
    }
  }
  out += RenderTable(rows);
  out += "(CHECK: what the check found now; STATE: the key in the pool afterwards; unverified: no answer about "
         "the key, so it is not counted)\n";
  return out;
}

nlohmann::json CheckReportToJson(const CheckReport& report) {
  nlohmann::json providers = nlohmann::json::array();
  for (const CheckReportProvider& p : report.providers) {
    nlohmann::json keys = nlohmann::json::array();
    for (const CheckReportKey& k : p.keys) {
      nlohmann::json key = {{"label", k.label},
                            {"fingerprint", k.fingerprint},
                            {"state", std::string(keypool::KeyStateName(k.state))},
                            {"checked", k.checked},
                            {"outcome", k.outcome},
                            {"detail", k.detail},
                            {"usable", k.usable}};
      if (k.ready_in_ms) key["ready_in_ms"] = *k.ready_in_ms;
      keys.push_back(std::move(key));
    }
    providers.push_back({{"name", p.name}, {"usable", p.usable}, {"usable_keys", UsableKeys(p)}, {"keys", keys}});
  }
  return {{"ok", report.ok}, {"providers", providers}};
}

std::string RenderCheckJson(const CheckReport& report) {
  return CheckReportToJson(report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace kpm::server
