#include "providers/provider_base.h"

#include <algorithm>

#include "common/strings.h"
#include "providers/caps.h"
#include "providers/classify.h"
#include "providers/rate_limit_headers.h"

namespace kpm::providers {
namespace {

/// An empty answer is a failed attempt (cold start, upstream glitch) unless the
/// finish reason explains it: a filter, a refusal or a token limit is the answer.
bool EmptyIsFailure(const std::string& finish_reason) {
  return finish_reason.empty() || finish_reason == "stop" || finish_reason == "end_turn" || finish_reason == "STOP" ||
         finish_reason == "error";
}

bool Is2xx(int status) { return status >= 200 && status <= 299; }

constexpr size_t kModelsNamed = 10;  // a "name one" message lists at most this many

}  // namespace


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
  if (const Json* e = JsonMember(doc, "error"); e != nullptr && !e->is_null()) {
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

ProviderBase::ProviderBase(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock)
    : config_(config), http_(http), clock_(clock) {
  for (const keypool::KeySpec& k : config_.keys) scrubber_.Add(k.secret);
}

HttpResult ProviderBase::Send(const HttpRequest& request, const BodyCallback& on_body) {
  HttpResult result = http_.Send(request, on_body);
  ScrubResult(result);
  return result;
}

void ProviderBase::ScrubResult(HttpResult& result) const {
  if (scrubber_.empty()) return;
  result.body = scrubber_.Scrub(result.body);
  result.error_message = scrubber_.Scrub(result.error_message);
  for (auto& [name, value] : result.headers) value = scrubber_.Scrub(value);
}

std::optional<std::string> ProviderBase::ResolveModel(const keypool::KeyLease& key, const CompletionRequest& request,
                                                      const AttemptContext& ctx, keypool::AttemptOutcome* error) {
  if (!request.model.empty()) return request.model;
  if (!config_.model.empty()) return config_.model;
  if (std::string model = DefaultModel(config_.type); !model.empty()) return model;
  return ServerModel(key, ctx, error);
}

std::optional<std::string> ProviderBase::ServerModel(const keypool::KeyLease& key, const AttemptContext& ctx,
                                                     keypool::AttemptOutcome* error) {
  const std::string endpoint = BaseUrl(key);
  const std::string who = "provider " + config_.name + ": no model given";
  std::vector<ModelInfo> models;
  bool known = false;
  {
    std::lock_guard<std::mutex> lock(listed_mu_);
    if (auto it = listed_models_.find(endpoint); it != listed_models_.end()) {
      models = it->second;
      known = true;
    }
  }
  if (!known) {
    // Not under the lock: no upstream request runs under a lock. Calls that start
    // together may each ask; the first answer stored is the one kept.
    keypool::AttemptOutcome listed = ListModels(key, ctx, &models);
    if (listed.outcome != keypool::Outcome::kOk) {
      *error = listed;
      error->message = who + " and asking the server for its models failed: " + listed.message;
      return std::nullopt;
    }
    std::lock_guard<std::mutex> lock(listed_mu_);
    listed_models_.emplace(endpoint, models);
  }
  if (models.size() == 1) return models[0].id;
  error->outcome = keypool::Outcome::kBadRequest;
  error->status = 0;
  error->limits = {};
  if (models.empty()) {
    error->message = who + " and the server lists no models; name one with \"model\"";
    return std::nullopt;
  }
  std::string names;
  for (size_t i = 0; i < models.size() && i < kModelsNamed; ++i) {
    names += (i == 0 ? "" : ", ") + scrubber_.ForDisplay(models[i].id, 100);
  }
  if (models.size() > kModelsNamed) names += ", … (" + std::to_string(models.size() - kModelsNamed) + " more)";
  error->message = who + " and the server lists " + std::to_string(models.size()) + " models: " + names +
                   "; name one with \"model\"";
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
  for (const auto& header : config_.headers) {
    headers.erase(std::remove_if(headers.begin(), headers.end(),
                                 [&](const auto& h) { return EqualsIgnoreCase(h.first, header.first); }),
                  headers.end());
    headers.emplace_back(header.first, header.second);
  }
  req.headers = std::move(headers);
  return req;
}

std::optional<HttpRequest> ProviderBase::NewCompletionRequest(std::string url, const keypool::KeyLease& key,
                                                              const Json& body, std::optional<int> max_tokens, const AttemptContext& ctx,
                                                              keypool::AttemptOutcome* error) const {
  HeaderList headers = {{"Content-Type", "application/json"}};
  for (auto& h : KeyHeaders(key)) headers.push_back(std::move(h));
  std::optional<HttpRequest> req = NewRequest("POST", std::move(url), std::move(headers), ctx, error);
  if (!req) return req;
  if (config_.stream) {
    req->headers.emplace_back("Accept", "text/event-stream");
  } else {
    req->max_body_bytes = CompletionBodyCapBytes(max_tokens);
  }
  req->body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return req;
}

HttpResult ProviderBase::SendCompletion(const HttpRequest& request, const CompletionRequest& completion,
                                        StreamState& state, const std::function<bool(const SseEvent&)>& on_event,
                                        const std::function<void(Json)>& on_body) {
  const size_t answer_cap = AnswerCapBytes(MaxTokens(completion));
  auto within_answer_cap = [&] {
    if (state.completion.text.size() <= answer_cap) return true;
    state.over_cap = "an answer over " + CapText(answer_cap);
    return false;
  };
  if (!config_.stream) {
    HttpResult result = Send(request, nullptr);
    if (Is2xx(result.status) && result.body_complete) {
      on_body(Json::parse(result.body, nullptr, false));
      within_answer_cap();
    }
    return result;
  }
  SseParser parser;
  HttpResult result = Send(request, [&](std::string_view chunk) {
    return parser.Feed(chunk, [&](const SseEvent& raw) {
      // Scrubbed while whole, before the adapter reads (or quotes) any of it.
      SseEvent event{scrubber_.Scrub(raw.event), scrubber_.Scrub(raw.data), scrubber_.Scrub(raw.id)};
      return on_event(event) && within_answer_cap();
    });
  });
  if (!parser.overflow().empty()) state.over_cap = parser.overflow();
  return result;
}

keypool::AttemptOutcome ProviderBase::Judge(const HttpResult& result, const StreamState& state,
                                            const AttemptContext& ctx, std::string_view terminator) const {
  const int64_t now = NowMs();
  keypool::AttemptOutcome out;
  out.status = result.status;
  if (result.error == TransportError::kCancelled || (ctx.cancel != nullptr && ctx.cancel->cancelled())) {
    return ClassifyTransport(HttpResult{TransportError::kCancelled, "", result.status, {}, {}, false});
  }
  if (result.status == 0 || result.error == TransportError::kNetwork) return ClassifyTransport(result);
  if (!Is2xx(result.status)) return ClassifyHttpError(result.status, result.body, result.headers, now);
  if (!state.inband_error.is_null()) {
    return ClassifyInBandError(state.inband_error, result.status, result.headers, now);
  }
  out.limits = ParseRateLimitHeaders(result.headers, now);
  if (!state.over_cap.empty()) {
    out.outcome = keypool::Outcome::kServerError;
    out.message = std::to_string(result.status) + " with " + state.over_cap;
    return out;
  }
  if (state.verdict) {
    keypool::AttemptOutcome v = *state.verdict;
    v.limits = out.limits;
    if (v.status == 0) v.status = result.status;
    return v;
  }
  if (state.malformed) return MalformedBody(out, state.malformed_what);
  if (!state.done && result.error != TransportError::kNone && result.error != TransportError::kAborted) {
    // A stall, a timeout or the body cap before the terminator. After it, the answer is
    // whole and a server that then holds the connection open costs us nothing.
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
  keypool::AttemptOutcome outcome = Judge(result, state, ctx, config_.stream ? terminator : "the end of the body");
  if (outcome.outcome == keypool::Outcome::kOk) *out = std::move(state.completion);
  return outcome;
}

keypool::AttemptOutcome ProviderBase::GetJson(const std::string& url, const keypool::KeyLease& key,
                                              const AttemptContext& ctx, Json* body) {
  keypool::AttemptOutcome out;
  std::optional<HttpRequest> req = NewRequest("GET", url, KeyHeaders(key), ctx, &out);
  if (!req) return out;
  req->max_body_bytes = kMaxWholeBodyBytes;  // a model catalogue can be large
  HttpResult result = Send(*req, nullptr);
  StreamState state;
  if (Is2xx(result.status) && result.body_complete) {
    state.done = true;  // a body cut short is judged as cut, not as malformed
    Json doc = Json::parse(result.body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      state.MarkMalformed("not a JSON object");
    } else if (const Json* e = JsonMember(doc, "error"); e != nullptr && !e->is_null()) {
      state.inband_error = *e;
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
  const Json* models = JsonArray(body, array_key);
  if (models == nullptr) return MalformedBody(outcome, "no " + std::string(array_key) + " array");
  out->clear();
  for (const Json& m : *models) {
    ModelInfo info = to_model(m);
    if (!info.id.empty()) out->push_back(std::move(info));
  }
  return outcome;
}

}  // namespace kpm::providers
