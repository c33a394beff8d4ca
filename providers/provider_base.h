#pragma once
/// ProviderBase: what the three adapters share. It owns the way to the upstream: the
/// HttpClient is private here, and every path to it (SendCompletion, GetJson,
/// GetModels) scrubs what came back (body, header values, transport message, every SSE
/// event's data) of the provider's keys while each is whole, before an adapter or a
/// classifier sees it, and enforces the size caps of caps.h. It also resolves the model
/// and the endpoint of a key, bounds request timeouts by the call's deadline, builds the
/// headers (ours, then config.headers) and judges a finished attempt. An adapter keeps
/// what is its API's own: URLs, the key header, the request body and how a chunk or
/// body is read. Internal to providers/.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/redact.h"
#include "keypool/clock.h"
#include "keypool/outcome.h"
#include "providers/http_client.h"
#include "providers/json_access.h"
#include "providers/provider.h"
#include "providers/sse_parser.h"

namespace kpm::providers {

/// What a stream (or a whole body) said, filled in by an adapter's parser.
struct StreamState {
  Completion completion;
  bool done = false;            ///< the provider's terminator was seen
  bool malformed = false;       ///< a chunk or body that is not the JSON we expect
  std::string malformed_what;   ///< short description for the message
  Json inband_error;            ///< non-null: an error object inside the 200
  std::optional<keypool::AttemptOutcome> verdict;  ///< an adapter's own decision (Gemini blockReason)
  std::string over_cap;         ///< non-empty: the cap that stopped the transfer ("a stream line over 1 MiB")

  void MarkMalformed(std::string what) {
    malformed = true;
    malformed_what = std::move(what);
  }
};

/// Request headers in the order they are sent.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

class ProviderBase : public Provider {
 public:
  /// Registers every secret of config.keys with the scrubber.
  ProviderBase(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock);
  const ProviderConfig& config() const override { return config_; }

 protected:
  /// The headers that carry `key` and anything else the API wants on every call
  /// (version, attribution); none for the key when key.secret is empty (a server
  /// without authentication). Sent after Content-Type, before config.headers.
  virtual HeaderList KeyHeaders(const keypool::KeyLease& key) const = 0;

  /// The endpoint for `key`: its own baseUrl when it has one, else the provider's.
  const std::string& BaseUrl(const keypool::KeyLease& key) const {
    return key.base_url.empty() ? config_.base_url : key.base_url;
  }

  /// request.model, else config.model, else DefaultModel(type). For openai-compatible
  /// with none of these, the model the key's endpoint lists (ListModels with `key`,
  /// asked once per endpoint and remembered) when it lists exactly one. nullopt with
  /// *error set: kBadRequest naming the listed models (several) or saying there are
  /// none; the listing's own outcome when it failed (a 401 stays an auth_error).
  /// Thread-safe.
  std::optional<std::string> ResolveModel(const keypool::KeyLease& key, const CompletionRequest& request,
                                          const AttemptContext& ctx, keypool::AttemptOutcome* error);

  /// request.max_tokens, else config.max_tokens (nullopt when neither is set).
  std::optional<int> MaxTokens(const CompletionRequest& request) const {
    return request.max_tokens ? request.max_tokens : config_.max_tokens;
  }

  /// A request with config's timeouts bounded by ctx.deadline_ms, our headers, then
  /// config.headers (which replace ours of the same name, case-insensitively).
  /// nullopt with *error a kTimeout when the deadline has already passed.
  std::optional<HttpRequest> NewRequest(std::string method, std::string url, HeaderList headers,
                                        const AttemptContext& ctx, keypool::AttemptOutcome* error) const;

  /// NewRequest for a completion: a POST of `body` (JSON, invalid UTF-8 replaced) with
  /// Content-Type, KeyHeaders and, when config.stream, Accept: text/event-stream.
  /// `max_tokens` bounds a whole (`stream: false`) body: CompletionBodyCapBytes.
  std::optional<HttpRequest> NewCompletionRequest(std::string url, const keypool::KeyLease& key, const Json& body,
                                                  std::optional<int> max_tokens, const AttemptContext& ctx,
                                                  keypool::AttemptOutcome* error) const;

  /// Sends a completion request. When config.stream, the body goes through an SSE
  /// parser and each event, its data scrubbed, to `on_event`, which returns false to
  /// stop reading (after an error chunk or a malformed one). Else the body is read
  /// whole (up to kMaxWholeBodyBytes), scrubbed, parsed (a discarded Json when it is
  /// not JSON) and given to `on_body`; a 2xx body that did not arrive whole is not
  /// parsed and leaves state.done false, so Finish reports the cut (or the timeout)
  /// itself. A stream line, an event or the answer text (AnswerCapBytes of
  /// MaxTokens(completion)) over its cap stops the transfer and sets state.over_cap.
  /// The result comes back scrubbed.
  HttpResult SendCompletion(const HttpRequest& request, const CompletionRequest& completion, StreamState& state,
                            const std::function<bool(const SseEvent&)>& on_event,
                            const std::function<void(Json)>& on_body);

  /// Judges a finished completion attempt, in this order: cancelled; no answer
  /// (network, timeout before headers, headers over their cap); non-2xx status (error
  /// body); an in-band error; a stream cap passed; the adapter's own verdict;
  /// malformed; a timeout or the body cap mid-body; no terminator (`terminator` names it for a stream, "the
  /// end of the body" otherwise); empty answer text; else kOk, and state.completion
  /// moves into *out. Limits from the headers are attached to every outcome.
  keypool::AttemptOutcome Finish(const HttpResult& result, StreamState& state, const AttemptContext& ctx,
                                 std::string_view terminator, Completion* out) const;

  /// A GET with KeyHeaders (CheckKey / ListModels), its body read whole (up to
  /// kMaxWholeBodyBytes) and scrubbed: on kOk the parsed JSON object goes to *body
  /// unless body is null; else the outcome says what went wrong.
  keypool::AttemptOutcome GetJson(const std::string& url, const keypool::KeyLease& key, const AttemptContext& ctx,
                                  Json* body);

  /// ListModels over GetJson: body[array_key] must be an array (else kServerError);
  /// each element becomes `to_model(element)`, skipped when its id is empty.
  keypool::AttemptOutcome GetModels(const std::string& url, const keypool::KeyLease& key, const AttemptContext& ctx,
                                    const char* array_key, const std::function<ModelInfo(const Json&)>& to_model,
                                    std::vector<ModelInfo>* out);

  /// Knows every key of this provider.
  const Scrubber& scrubber() const { return scrubber_; }
  int64_t NowMs() const { return clock_.NowMs(); }

 private:
  /// The one call of http_: the result comes back scrubbed.
  HttpResult Send(const HttpRequest& request, const BodyCallback& on_body);
  void ScrubResult(HttpResult& result) const;
  /// Finish without moving the answer out.
  keypool::AttemptOutcome Judge(const HttpResult& result, const StreamState& state, const AttemptContext& ctx,
                                std::string_view terminator) const;
  /// The openai-compatible fallback of ResolveModel.
  std::optional<std::string> ServerModel(const keypool::KeyLease& key, const AttemptContext& ctx,
                                         keypool::AttemptOutcome* error);

  const ProviderConfig config_;
  HttpClient& http_;
  keypool::Clock& clock_;
  Scrubber scrubber_;
  std::mutex listed_mu_;
  std::map<std::string, std::vector<ModelInfo>> listed_models_;  // by endpoint; guarded by listed_mu_
};

/// Sends on_text(count) if the callback is set.
inline void ReportText(const AttemptContext& ctx, size_t count) {
  if (ctx.on_text) ctx.on_text(count);
}

/// `outcome` turned into a kServerError "<status> with a malformed body: <what>".
keypool::AttemptOutcome MalformedBody(keypool::AttemptOutcome outcome, std::string_view what);

/// For a chunk or whole body: one that is not a JSON object is marked malformed with
/// `not_object_what`, and a non-null "error" member becomes state.inband_error. True when
/// either happened; the caller then takes nothing more from `doc`.
bool TakeErrorOrMalformed(const Json& doc, std::string_view not_object_what, StreamState& state);

/// request.system with every system-role message appended (blank-line separated), for
/// APIs that take the system prompt apart from the messages.
std::string JoinedSystemPrompt(const CompletionRequest& request);

/// The factories behind MakeProvider.
std::unique_ptr<Provider> MakeOpenAIProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock);
std::unique_ptr<Provider> MakeAnthropicProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock);
std::unique_ptr<Provider> MakeGeminiProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock);

}  // namespace kpm::providers
