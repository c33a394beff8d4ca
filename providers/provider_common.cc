#include "providers/provider_common.h"

#include <algorithm>
#include <cctype>

#include "providers/classify.h"
#include "providers/limits.h"

namespace kpm::providers {
namespace {

bool SameName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

/// An empty answer is a failed attempt (cold start, upstream glitch) unless the
/// finish reason explains it: a filter, a refusal or a token limit is the answer.
bool EmptyIsFailure(const std::string& finish_reason) {
  return finish_reason.empty() || finish_reason == "stop" || finish_reason == "end_turn" || finish_reason == "STOP" ||
         finish_reason == "error";
}

}  // namespace

std::string JsonString(const Json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t JsonInt(const Json& obj, const char* key) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(key);
  return it != obj.end() && it->is_number() ? it->get<int64_t>() : 0;
}

keypool::AttemptOutcome MalformedBody(keypool::AttemptOutcome outcome, std::string_view what) {
  outcome.outcome = keypool::Outcome::kServerError;
  outcome.message = std::to_string(outcome.status) + " with a malformed body: " + std::string(what);
  return outcome;
}

bool TakeErrorOrMalformed(const Json& doc, std::string_view not_object_what, StreamState& state) {
  if (!doc.is_object()) {
    state.MarkMalformed(std::string(not_object_what));
    return true;
  }
  if (auto e = doc.find("error"); e != doc.end() && !e->is_null()) {
    state.inband_error = *e;
    return true;
  }
  return false;
}

std::string JoinedSystemPrompt(const CompletionRequest& request) {
  std::string system = request.system;
  for (const ChatMessage& m : request.messages) {
    if (m.role == "system") system += (system.empty() ? "" : "\n\n") + m.content;
  }
  return system;
}

std::optional<std::string> ProviderBase::ResolveModel(const CompletionRequest& request,
                                                      keypool::AttemptOutcome* error) const {
  if (!request.model.empty()) return request.model;
  if (!config_.model.empty()) return config_.model;
  error->outcome = keypool::Outcome::kBadRequest;
  error->status = 0;
  error->message = "no model given and provider " + config_.name + " has no default model";
  return std::nullopt;
}

std::optional<HttpRequest> ProviderBase::NewRequest(std::string method, std::string url, HeaderList headers,
                                                    const AttemptContext& ctx, keypool::AttemptOutcome* error) const {
  HttpRequest req;
  req.method = std::move(method);
  req.url = std::move(url);
  req.cancel = ctx.cancel;
  int64_t total = config_.timeout_ms;
  if (ctx.deadline_ms > 0) {
    int64_t left = ctx.deadline_ms - NowMs();
    if (left <= 0) {
      error->outcome = keypool::Outcome::kTimeout;
      error->status = 0;
      error->message = "timeout: the call's deadline has passed";
      return std::nullopt;
    }
    total = std::min(total, left);
  }
  req.total_timeout_ms = total;
  req.first_byte_timeout_ms = std::min(config_.first_byte_timeout_ms, total);
  req.idle_timeout_ms = std::min(config_.idle_timeout_ms, total);
  req.connect_timeout_ms = std::min<int64_t>(req.connect_timeout_ms, req.first_byte_timeout_ms);
  for (const auto& [name, value] : config_.headers) {
    headers.erase(std::remove_if(headers.begin(), headers.end(), [&](const auto& h) { return SameName(h.first, name); }),
                  headers.end());
    headers.emplace_back(name, value);
  }
  req.headers = std::move(headers);
  return req;
}

std::optional<HttpRequest> ProviderBase::NewCompletionRequest(std::string url, const keypool::KeyLease& key,
                                                              const Json& body, const AttemptContext& ctx,
                                                              keypool::AttemptOutcome* error) const {
  HeaderList headers = {{"Content-Type", "application/json"}};
  for (auto& h : KeyHeaders(key)) headers.push_back(std::move(h));
  std::optional<HttpRequest> req = NewRequest("POST", std::move(url), std::move(headers), ctx, error);
  if (!req) return req;
  if (config_.stream) req->headers.emplace_back("Accept", "text/event-stream");
  req->body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return req;
}

HttpResult ProviderBase::SendSse(const HttpRequest& request, const std::function<bool(const SseEvent&)>& on_event) {
  SseParser parser;
  return http_.Send(request, [&](std::string_view chunk) { return parser.Feed(chunk, on_event); });
}

HttpResult ProviderBase::SendCompletion(const HttpRequest& request, StreamState& state,
                                        const std::function<bool(const SseEvent&)>& on_event,
                                        const std::function<void(Json)>& on_body) {
  if (config_.stream) return SendSse(request, on_event);
  HttpResult result = http_.Send(request, nullptr);
  if (result.status >= 200 && result.status <= 299) {
    on_body(Json::parse(result.body, nullptr, false));
    if (!result.body_complete) state.done = false;
  }
  return result;
}

keypool::AttemptOutcome ProviderBase::Judge(const HttpResult& result, const StreamState& state,
                                            const AttemptContext& ctx, std::string_view terminator) const {
  const int64_t now = NowMs();
  keypool::AttemptOutcome out;
  out.status = result.status;
  if (result.error == TransportError::kCancelled || (ctx.cancel != nullptr && ctx.cancel->cancelled())) {
    out = ClassifyTransport(HttpResult{TransportError::kCancelled, "", result.status, {}, {}, false});
    return out;
  }
  if (result.status == 0 || result.error == TransportError::kNetwork) return ClassifyTransport(result);
  if (result.status < 200 || result.status > 299) {
    return ClassifyHttpError(result.status, result.body, result.headers, now);
  }
  if (!state.inband_error.is_null()) {
    return ClassifyInBandError(state.inband_error, result.status, result.headers, now);
  }
  out.limits = LimitsFromHeaders(result.headers, now);
  if (state.verdict) {
    keypool::AttemptOutcome v = *state.verdict;
    v.limits = out.limits;
    if (v.status == 0) v.status = result.status;
    return v;
  }
  if (state.malformed) return MalformedBody(out, state.malformed_what);
  if (!state.done && result.error != TransportError::kNone && result.error != TransportError::kAborted) {
    // A stall or timeout before the terminator. After it, the answer is whole and a
    // server that then holds the connection open costs us nothing.
    keypool::AttemptOutcome t = ClassifyTransport(result);
    t.limits = out.limits;
    return t;
  }
  if (!state.done) {
    out.outcome = keypool::Outcome::kServerError;
    out.message = std::to_string(result.status) + " but the answer was cut before " + std::string(terminator);
    return out;
  }
  if (state.completion.text.empty() && EmptyIsFailure(state.completion.finish_reason)) {
    out.outcome = keypool::Outcome::kServerError;
    out.message = std::to_string(result.status) + " with no answer text";
    return out;
  }
  out.outcome = keypool::Outcome::kOk;
  return out;
}

keypool::AttemptOutcome ProviderBase::Finish(const HttpResult& result, StreamState& state,
                                             const AttemptContext& ctx, std::string_view terminator,
                                             Completion* out) const {
  keypool::AttemptOutcome outcome = Judge(result, state, ctx, terminator);
  if (outcome.outcome == keypool::Outcome::kOk) *out = std::move(state.completion);
  return outcome;
}

keypool::AttemptOutcome ProviderBase::GetJson(const std::string& url, const keypool::KeyLease& key,
                                              const AttemptContext& ctx, Json* body) {
  keypool::AttemptOutcome out;
  std::optional<HttpRequest> req = NewRequest("GET", url, KeyHeaders(key), ctx, &out);
  if (!req) return out;
  HttpResult result = http_.Send(*req, nullptr);
  StreamState state;
  state.done = result.body_complete;
  if (result.status >= 200 && result.status <= 299 && result.error == TransportError::kNone) {
    Json doc = Json::parse(result.body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      state.MarkMalformed("not a JSON object");
    } else if (doc.contains("error") && !doc["error"].is_null()) {
      state.inband_error = doc["error"];
    } else if (body != nullptr) {
      *body = std::move(doc);
    }
  }
  state.completion.finish_reason = "n/a";  // a listing has no answer text to be empty
  return Judge(result, state, ctx, "the end of the body");
}

keypool::AttemptOutcome ProviderBase::GetModels(const std::string& url, const keypool::KeyLease& key,
                                                const AttemptContext& ctx, const char* array_key,
                                                const std::function<ModelInfo(const Json&)>& to_model,
                                                std::vector<ModelInfo>* out) {
  Json body;
  keypool::AttemptOutcome outcome = GetJson(url, key, ctx, &body);
  if (outcome.outcome != keypool::Outcome::kOk) return outcome;
  auto models = body.find(array_key);
  if (models == body.end() || !models->is_array()) {
    return MalformedBody(outcome, "no " + std::string(array_key) + " array");
  }
  out->clear();
  for (const Json& m : *models) {
    ModelInfo info = to_model(m);
    if (!info.id.empty()) out->push_back(std::move(info));
  }
  return outcome;
}

}  // namespace kpm::providers
