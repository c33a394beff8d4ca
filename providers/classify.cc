#include "providers/classify.h"

#include <algorithm>
#include <climits>

#include <nlohmann/json.hpp>

#include "common/strings.h"
#include "providers/json_access.h"
#include "providers/rate_limit_headers.h"

namespace kpm::providers {
namespace {

using keypool::Outcome;

constexpr size_t kMessageBytes = 300;  // the upstream's own words in a message

bool Contains(std::string_view hay, std::string_view needle) { return hay.find(needle) != std::string_view::npos; }
bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool IsQuotaCode(std::string_view c) {
  return c == "insufficient_quota" || c == "credit_balance_exhausted" || EndsWith(c, "_spend_limit_exceeded") ||
         EndsWith(c, "_usage_limit_exceeded") || c == "billing_error" || c == "payment_required" ||
         c == "enforced_spend_limit_reached";
}

/// The most telling name of the error, for messages.
std::string Label(const UpstreamError& e) {
  for (const std::string* s : {&e.code_text, &e.error_type, &e.detail_code, &e.status, &e.type}) {
    if (!s->empty()) return *s;
  }
  return "";
}

keypool::RateLimitInfo Limits(Outcome outcome, const UpstreamError* e, const Headers& headers, int64_t now_ms) {
  Headers merged = headers;
  if (e != nullptr) {
    for (const auto& [k, v] : e->embedded_headers) merged.emplace(k, v);
  }
  keypool::RateLimitInfo info = ParseRateLimitHeaders(merged, now_ms);
  if (e == nullptr) return info;
  // Gemini's retryDelay is meaningless on a daily cap (PROVIDERS §4): only trust it
  // on a per-minute limit.
  if (e->retry_delay_ms && outcome == Outcome::kRateLimited) ExtendRetryAt(info, now_ms + *e->retry_delay_ms);
  // A number from the body: bound it before converting (1e300 would be undefined
  // behaviour; anything past the hint ceiling is garbage, as for headers).
  if (e->availability_retry_after_s && *e->availability_retry_after_s >= 0 &&
      *e->availability_retry_after_s * 1000 <= static_cast<double>(kMaxHintMs)) {
    ExtendRetryAt(info, now_ms + static_cast<int64_t>(*e->availability_retry_after_s * 1000));
  }
  return info;
}

}  // namespace

UpstreamError ParseErrorObject(const Json& error) {
  UpstreamError e;
  if (error.is_string()) {  // some compatible servers send {"error":"text"}
    e.message = error.get_ref<const std::string&>();
    return e;
  }
  if (!error.is_object()) return e;
  e.message = JsonString(error, "message");
  e.type = JsonString(error, "type");
  e.status = JsonString(error, "status");
  if (const Json* code = JsonMember(error, "code")) {
    if (code->is_number_integer()) {
      // One past int (4294967725) is no code: cast down, its low bits would read as 429.
      std::optional<int64_t> n = JsonToInt(*code);
      if (n && *n >= INT_MIN && *n <= INT_MAX) e.code = static_cast<int>(*n);
    } else if (code->is_string()) {
      e.code_text = code->get_ref<const std::string&>();
    }
  }
  if (auto it = error.find("details"); it != error.end()) {
    if (it->is_object()) e.detail_code = JsonString(*it, "error_code");  // Anthropic
    if (it->is_array()) {  // Google RPC details
      for (const Json& d : *it) {
        if (!d.is_object()) continue;
        std::string at = JsonString(d, "@type");
        if (EndsWith(at, "google.rpc.ErrorInfo")) {
          if (std::string r = JsonString(d, "reason"); !r.empty()) e.reasons.push_back(r);
        } else if (EndsWith(at, "google.rpc.QuotaFailure")) {
          if (auto v = d.find("violations"); v != d.end() && v->is_array()) {
            for (const Json& viol : *v) {
              if (std::string q = JsonString(viol, "quotaId"); !q.empty()) e.quota_ids.push_back(q);
            }
          }
        } else if (EndsWith(at, "google.rpc.RetryInfo")) {
          e.retry_delay_ms = ParseProtobufDurationMs(JsonString(d, "retryDelay"));
        }
      }
    }
  }
  if (auto md = error.find("metadata"); md != error.end() && md->is_object()) {  // OpenRouter
    e.error_type = JsonString(*md, "error_type");
    e.limit_source = JsonString(*md, "limit_source");
    const Json* provider_code = JsonMember(*md, "provider_code");
    e.provider_code = provider_code != nullptr && !provider_code->is_null();
    e.moderation = md->contains("reasons") || md->contains("flagged_input") || md->contains("patterns");
    if (auto h = md->find("headers"); h != md->end() && h->is_object()) {
      for (auto it = h->begin(); it != h->end(); ++it) {
        if (it->is_string()) e.embedded_headers[AsciiLower(it.key())] = it->get_ref<const std::string&>();
        else if (it->is_number()) e.embedded_headers[AsciiLower(it.key())] = it->dump();  // numbers dump without throwing
      }
    }
  }
  if (auto av = error.find("availability"); av != error.end() && av->is_object()) {  // OpenRouter
    e.availability_code = JsonString(*av, "code");
    e.availability_retry_after_s = JsonDouble(*av, "retry_after");
  }
  return e;
}

std::optional<UpstreamError> ParseErrorBody(std::string_view body) {
  Json doc = Json::parse(body, nullptr, false);
  if (doc.is_discarded()) return std::nullopt;
  if (doc.is_array() && doc.size() == 1) doc = doc[0];  // Gemini's one-element array
  if (!doc.is_object()) return std::nullopt;
  auto it = doc.find("error");
  if (it == doc.end() || it->is_null()) return std::nullopt;
  return ParseErrorObject(*it);
}

Outcome ClassifyError(int status, const UpstreamError& e) {
  const std::string msg = AsciiLower(e.message);
  auto has = [&](std::string_view v) {
    return e.code_text == v || e.type == v || e.error_type == v || e.status == v || e.detail_code == v;
  };
  auto reason = [&](std::string_view r) { return std::find(e.reasons.begin(), e.reasons.end(), r) != e.reasons.end(); };

  // 1. The body's code / type.
  if (IsQuotaCode(e.detail_code) || IsQuotaCode(e.code_text) || IsQuotaCode(e.type) || IsQuotaCode(e.error_type)) {
    return Outcome::kQuotaExhausted;
  }
  for (const std::string& q : e.quota_ids) {
    if (Contains(q, "PerDay")) return Outcome::kQuotaExhausted;
  }
  if (e.limit_source == "openrouter_free_tier_daily" || e.limit_source == "openrouter_credits" ||
      e.limit_source == "openrouter_key_limit" || Contains(msg, "free-models-per-day")) {
    return Outcome::kQuotaExhausted;
  }
  if (has("context_length_exceeded")) return Outcome::kContextTooLong;
  if (has("unsupported_country_region_territory") || e.availability_code == "region_restricted" || e.moderation) {
    return Outcome::kBadRequest;  // the caller's region or content: every key fails alike
  }
  if (has("invalid_api_key") || has("authentication_error") || has("authentication") || reason("API_KEY_INVALID") ||
      has("permission_error") || has("PERMISSION_DENIED") || has("FAILED_PRECONDITION")) {
    return Outcome::kAuthError;
  }
  if (e.availability_code == "capacity_exhausted" || (status == 429 && e.provider_code)) {
    return Outcome::kServerError;  // every upstream was busy: not this key's limit
  }
  if (has("timeout_error") || has("timeout") || has("DEADLINE_EXCEEDED")) return Outcome::kTimeout;
  if (has("overloaded_error") || has("api_error") || has("server_error") || has("service_unavailable_error") ||
      has("server_is_overloaded") || has("provider_unavailable") || has("provider_overloaded") || has("server") ||
      has("unmapped") || has("INTERNAL") || has("UNAVAILABLE")) {
    return Outcome::kServerError;
  }
  if (has("rate_limit_exceeded") || has("rate_limit_error") || has("slow_down") || has("RESOURCE_EXHAUSTED") ||
      status == 429) {
    // The request alone is over the TPM limit: no wait on this key helps.
    if (Contains(msg, "request too large")) return Outcome::kBadRequest;
    return Outcome::kRateLimited;
  }

  // 2. Phrases, for errors whose type is a generic invalid_request_error.
  if (Contains(msg, "credit balance is too low") || Contains(msg, "usage limits")) return Outcome::kQuotaExhausted;
  if (Contains(msg, "prompt is too long") || Contains(msg, "exceed context limit") ||
      Contains(msg, "maximum context length") || Contains(msg, "context length") ||
      (Contains(msg, "input token count") && Contains(msg, "exceeds the maximum"))) {
    return Outcome::kContextTooLong;
  }
  if (Contains(msg, "api key not valid") || Contains(msg, "api key expired")) return Outcome::kAuthError;

  // 3. The status.
  switch (status) {
    case 401: case 403: return Outcome::kAuthError;
    case 402: return Outcome::kQuotaExhausted;
    case 408: return Outcome::kTimeout;
    case 413: return Outcome::kContextTooLong;
    default: break;
  }
  if (status >= 500) return Outcome::kServerError;
  if (status >= 400) return Outcome::kBadRequest;
  return Outcome::kServerError;  // an in-band error with nothing to go on
}

keypool::AttemptOutcome ClassifyHttpError(int status, std::string_view body, const Headers& headers, int64_t now_ms) {
  keypool::AttemptOutcome out;
  out.status = status;
  std::optional<UpstreamError> e = ParseErrorBody(body);
  if (e) {
    out.outcome = ClassifyError(status, *e);
    std::string label = Label(*e);
    out.message = std::to_string(status) + (label.empty() ? "" : " " + label) + ": " + TruncateUtf8(e->message, kMessageBytes);
  } else {
    out.outcome = ClassifyError(status, UpstreamError{});
    std::string text = body.empty() ? "(empty body)" : TruncateUtf8(body, kMessageBytes);
    out.message = std::to_string(status) + ": " + text;
  }
  out.limits = Limits(out.outcome, e ? &*e : nullptr, headers, now_ms);
  return out;
}

keypool::AttemptOutcome ClassifyInBandError(const Json& error, int http_status, const Headers& headers,
                                            int64_t now_ms) {
  keypool::AttemptOutcome out;
  out.status = http_status;
  UpstreamError e = ParseErrorObject(error);
  out.outcome = ClassifyError(e.code, e);
  std::string label = Label(e);
  std::string code = e.code != 0 ? std::to_string(e.code) : "";
  std::string head = code + (code.empty() || label.empty() ? "" : " ") + label;
  out.message = "in-stream error" + (head.empty() ? "" : " " + head) + ": " + TruncateUtf8(e.message, kMessageBytes);
  out.limits = Limits(out.outcome, &e, headers, now_ms);
  return out;
}

keypool::AttemptOutcome ClassifyTransport(const HttpResult& result) {
  keypool::AttemptOutcome out;
  out.status = result.status;
  switch (result.error) {
    case TransportError::kNetwork:
      out.outcome = Outcome::kNetworkError;
      out.message = "network error: " + TruncateUtf8(result.error_message, kMessageBytes);
      break;
    case TransportError::kFirstByteTimeout:
    case TransportError::kIdleTimeout:
    case TransportError::kTotalTimeout:
      out.outcome = Outcome::kTimeout;
      out.message = "timeout: " + TruncateUtf8(result.error_message, kMessageBytes);
      break;
    case TransportError::kCancelled:
      out.outcome = Outcome::kCancelled;
      out.message = "cancelled";
      break;
    case TransportError::kTooLarge:  // "200 with a body over 32 MiB", "response headers over 256 KiB"
      out.outcome = Outcome::kServerError;
      out.message = (result.status != 0 ? std::to_string(result.status) + " with " : "") +
                    TruncateUtf8(result.error_message.empty() ? "an answer over a size cap" : result.error_message,
                                 kMessageBytes);
      break;
    case TransportError::kAborted:
    case TransportError::kNone:
      out.outcome = Outcome::kServerError;
      out.message = result.error_message.empty() ? "transfer aborted" : TruncateUtf8(result.error_message, kMessageBytes);
      break;
  }
  return out;
}

}  // namespace kpm::providers
