#include "state/record_codec.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace kpm::state {
namespace {

using Json = nlohmann::json;
using keypool::Hold;
using keypool::KeyRecord;
using keypool::Outcome;
using keypool::RateLimitInfo;
using keypool::Window;

Json HoldJson(const Hold& h) { return Json{{"owner", h.owner}, {"until", h.until_ms}}; }
Json HoldsJson(const std::vector<Hold>& hs) {
  Json a = Json::array();
  for (const Hold& h : hs) a.push_back(HoldJson(h));
  return a;
}
Json WindowJson(const Window& w) { return Json{{"start", w.start_ms}, {"used", w.used}}; }

void PutOpt(Json& j, const char* name, const std::optional<int64_t>& v) {
  if (v) j[name] = *v;
}

// Type-checked readers: a field of the wrong type takes its default.
int64_t Int(const Json& j, const char* name, int64_t def = 0) {
  auto it = j.find(name);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : def;
}
std::optional<int64_t> OptInt(const Json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}
bool Bool(const Json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}
std::string Str(const Json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
Hold ReadHold(const Json& j) {
  if (!j.is_object()) return {};
  return Hold{Str(j, "owner"), Int(j, "until")};
}
std::vector<Hold> ReadHolds(const Json& j, const char* name) {
  std::vector<Hold> out;
  auto it = j.find(name);
  if (it == j.end() || !it->is_array()) return out;
  for (const Json& h : *it) out.push_back(ReadHold(h));
  return out;
}
Window ReadWindow(const Json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_object()) return {};
  return Window{Int(*it, "start"), Int(*it, "used")};
}
Outcome ReadOutcome(const std::string& name) {
  for (int i = 0; i <= static_cast<int>(Outcome::kCancelled); ++i) {
    if (keypool::OutcomeName(static_cast<Outcome>(i)) == name) return static_cast<Outcome>(i);
  }
  return Outcome::kOk;
}

bool SameHold(const Hold& a, const Hold& b) { return a.owner == b.owner && a.until_ms == b.until_ms; }
bool SameHolds(const std::vector<Hold>& a, const std::vector<Hold>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), SameHold);
}
bool SameWindow(const Window& a, const Window& b) { return a.start_ms == b.start_ms && a.used == b.used; }

}  // namespace

std::string EncodeRecord(const KeyRecord& r, const EntryMeta& meta) {
  Json j;
  j["v"] = 1;
  j["provider"] = meta.provider;
  j["host"] = meta.host;
  j["updated"] = meta.updated_ms;
  j["disabled"] = r.disabled;
  j["disabled_at"] = r.disabled_at_ms;
  j["cooling"] = r.cooling;
  j["cooling_until"] = r.cooling_until_ms;
  j["cause_at"] = r.cause_at_ms;
  j["cause"] = std::string(keypool::OutcomeName(r.cause));
  j["reason"] = r.reason;
  j["rate_limit_streak"] = r.rate_limit_streak;
  j["error_streak"] = r.error_streak;
  j["server_error_strikes"] = r.server_error_strikes;
  j["trial"] = HoldJson(r.trial);
  j["leases"] = HoldsJson(r.leases);
  j["sticky"] = HoldsJson(r.sticky);
  j["minute"] = WindowJson(r.minute);
  j["day"] = WindowJson(r.day);
  j["minute_tokens"] = WindowJson(r.minute_tokens);
  Json limits = Json::object();
  PutOpt(limits, "retry_at", r.last_limits.retry_at_ms);
  PutOpt(limits, "requests_remaining", r.last_limits.requests_remaining);
  PutOpt(limits, "requests_reset_at", r.last_limits.requests_reset_at_ms);
  PutOpt(limits, "tokens_remaining", r.last_limits.tokens_remaining);
  PutOpt(limits, "tokens_reset_at", r.last_limits.tokens_reset_at_ms);
  j["last_limits"] = std::move(limits);
  j["reset_at"] = r.reset_at_ms;
  j["requests"] = r.requests;
  j["failures"] = r.failures;
  if (r.last_status) j["last_status"] = *r.last_status;
  j["last_error"] = r.last_error;
  if (r.last_used_ms) j["last_used"] = *r.last_used_ms;
  // Reasons are scrubbed upstream text: dump() must not throw on invalid UTF-8.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<StoredRecord> DecodeRecord(const std::string& text) {
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return MakeError(ErrorKind::kInvalidArgument, "a stored key record is not a JSON object");
  }
  StoredRecord out;
  out.meta.provider = Str(j, "provider");
  out.meta.host = Str(j, "host");
  out.meta.updated_ms = Int(j, "updated");
  KeyRecord& r = out.record;
  r.disabled = Bool(j, "disabled");
  r.disabled_at_ms = Int(j, "disabled_at");
  r.cooling = Bool(j, "cooling");
  r.cooling_until_ms = Int(j, "cooling_until");
  r.cause_at_ms = Int(j, "cause_at");
  r.cause = ReadOutcome(Str(j, "cause"));
  r.reason = Str(j, "reason");
  r.rate_limit_streak = static_cast<int>(Int(j, "rate_limit_streak"));
  r.error_streak = static_cast<int>(Int(j, "error_streak"));
  r.server_error_strikes = static_cast<int>(Int(j, "server_error_strikes"));
  if (auto it = j.find("trial"); it != j.end()) r.trial = ReadHold(*it);
  r.leases = ReadHolds(j, "leases");
  r.sticky = ReadHolds(j, "sticky");
  r.minute = ReadWindow(j, "minute");
  r.day = ReadWindow(j, "day");
  r.minute_tokens = ReadWindow(j, "minute_tokens");
  if (auto it = j.find("last_limits"); it != j.end() && it->is_object()) {
    r.last_limits.retry_at_ms = OptInt(*it, "retry_at");
    r.last_limits.requests_remaining = OptInt(*it, "requests_remaining");
    r.last_limits.requests_reset_at_ms = OptInt(*it, "requests_reset_at");
    r.last_limits.tokens_remaining = OptInt(*it, "tokens_remaining");
    r.last_limits.tokens_reset_at_ms = OptInt(*it, "tokens_reset_at");
  }
  r.reset_at_ms = Int(j, "reset_at");
  r.requests = static_cast<uint64_t>(std::max<int64_t>(0, Int(j, "requests")));
  r.failures = static_cast<uint64_t>(std::max<int64_t>(0, Int(j, "failures")));
  if (auto s = OptInt(j, "last_status")) r.last_status = static_cast<int>(*s);
  r.last_error = Str(j, "last_error");
  r.last_used_ms = OptInt(j, "last_used");
  return out;
}

bool SameState(const KeyRecord& a, const KeyRecord& b) {
  return a.disabled == b.disabled && a.disabled_at_ms == b.disabled_at_ms && a.cooling == b.cooling &&
         a.cooling_until_ms == b.cooling_until_ms && a.cause_at_ms == b.cause_at_ms && a.cause == b.cause &&
         a.reason == b.reason && a.rate_limit_streak == b.rate_limit_streak && a.error_streak == b.error_streak &&
         a.server_error_strikes == b.server_error_strikes && SameHold(a.trial, b.trial) &&
         SameHolds(a.leases, b.leases) && SameHolds(a.sticky, b.sticky) && SameWindow(a.minute, b.minute) &&
         SameWindow(a.day, b.day) && SameWindow(a.minute_tokens, b.minute_tokens) && a.reset_at_ms == b.reset_at_ms &&
         a.last_error == b.last_error;
}

KeyRecord MergeRecovered(const KeyRecord& stored, const KeyRecord& local) {
  KeyRecord m = stored;
  m.in_flight = local.in_flight;
  // A reset newer than what this process saw wins; otherwise the local knowledge is
  // merged in monotonically.
  if (local.cooling && local.cause_at_ms > stored.reset_at_ms && local.cooling_until_ms > stored.cooling_until_ms) {
    m.cooling = true;
    m.cooling_until_ms = local.cooling_until_ms;
    m.cause_at_ms = std::max(stored.cause_at_ms, local.cause_at_ms);
    if (!m.disabled) {
      m.cause = local.cause;
      m.reason = local.reason;
    }
    m.rate_limit_streak = std::max(stored.rate_limit_streak, local.rate_limit_streak);
    m.error_streak = std::max(stored.error_streak, local.error_streak);
  }
  if (local.disabled && !stored.disabled && local.disabled_at_ms > stored.reset_at_ms) {
    m.disabled = true;
    m.disabled_at_ms = local.disabled_at_ms;
    m.cause = local.cause;
    m.reason = local.reason;
  }
  auto later = [](const Window& a, const Window& b) { return a.start_ms >= b.start_ms ? a : b; };
  m.minute = later(stored.minute, local.minute);
  m.day = later(stored.day, local.day);
  m.minute_tokens = later(stored.minute_tokens, local.minute_tokens);
  KeepNewerUse(m, local);
  if (local.last_used_ms && m.last_used_ms == local.last_used_ms) m.last_error = local.last_error;
  return m;
}

void KeepNewerUse(KeyRecord& stored, const KeyRecord& local) {
  if (!local.last_used_ms || (stored.last_used_ms && *stored.last_used_ms >= *local.last_used_ms)) return;
  stored.last_used_ms = local.last_used_ms;
  stored.last_status = local.last_status;
  stored.last_limits = local.last_limits;
}

}  // namespace kpm::state
