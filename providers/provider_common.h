#pragma once
/// What the three adapters share: model resolution, request timeouts bounded by the
/// call's deadline, headers (ours, then config.headers), sending a completion (SSE
/// streaming or one body) over an HttpClient, the order in which a finished attempt is
/// judged, and the GETs behind CheckKey / ListModels. An adapter keeps what is its API's
/// own: URLs, the key header, the request body and how a chunk or body is read.
/// Internal to providers/.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "keypool/clock.h"
#include "keypool/outcome.h"
#include "providers/http_client.h"
#include "providers/provider.h"
#include "providers/sse_parser.h"

namespace kpm::providers {

using Json = nlohmann::json;

/// What a stream (or a whole body) said, filled in by an adapter's parser.
struct StreamState {
  Completion completion;
  bool done = false;            ///< the provider's terminator was seen
  bool malformed = false;       ///< a chunk or body that is not the JSON we expect
  std::string malformed_what;   ///< short description for the message
  Json inband_error;            ///< non-null: an error object inside the 200
  std::optional<keypool::AttemptOutcome> verdict;  ///< an adapter's own decision (e.g. Gemini blockReason)

  void MarkMalformed(std::string what) {
    malformed = true;
    malformed_what = std::move(what);
  }
};

/// Request headers in the order they are sent.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

class ProviderBase : public Provider {
 public:
  ProviderBase(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock)
      : config_(config), http_(http), clock_(clock) {}
  const ProviderConfig& config() const override { return config_; }

 protected:
  /// The headers that carry `key` and anything else the API wants on every call
  /// (version, attribution); none for the key when key.secret is empty (a server
  /// without authentication). Sent after Content-Type, before config.headers.
  virtual HeaderList KeyHeaders(const keypool::KeyLease& key) const = 0;

  /// request.model, else config.model; else nullopt with *error a kBadRequest.
  std::optional<std::string> ResolveModel(const CompletionRequest& request, keypool::AttemptOutcome* error) const;

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
  std::optional<HttpRequest> NewCompletionRequest(std::string url, const keypool::KeyLease& key, const Json& body,
                                                  const AttemptContext& ctx, keypool::AttemptOutcome* error) const;

  /// Sends `request` and feeds the body through an SSE parser to `on_event`, which
  /// returns false to stop reading (after an error chunk or a malformed one).
  HttpResult SendSse(const HttpRequest& request, const std::function<bool(const SseEvent&)>& on_event);

  /// Sends a completion request: streamed through SendSse to `on_event` when
  /// config.stream, else one body. A 2xx body is parsed (a discarded Json when it is
  /// not JSON) and given to `on_body`; a body cut short then clears state.done.
  HttpResult SendCompletion(const HttpRequest& request, StreamState& state,
                            const std::function<bool(const SseEvent&)>& on_event,
                            const std::function<void(Json)>& on_body);

  /// Judges a finished completion attempt, in this order: cancelled; no answer
  /// (network, timeout before headers); non-2xx status (error body); an in-band
  /// error; the adapter's own verdict; malformed; a timeout mid-body; no terminator
  /// (`terminator` names it in the message); empty answer text; else kOk. Limits
  /// from the headers are attached to every outcome.
  keypool::AttemptOutcome Judge(const HttpResult& result, const StreamState& state, const AttemptContext& ctx,
                                std::string_view terminator) const;

  /// Judge, then on kOk moves state.completion into *out.
  keypool::AttemptOutcome Finish(const HttpResult& result, StreamState& state, const AttemptContext& ctx,
                                 std::string_view terminator, Completion* out) const;

  /// A GET with KeyHeaders (CheckKey / ListModels): on kOk the parsed JSON body goes to
  /// *body unless body is null; else the outcome says what went wrong.
  keypool::AttemptOutcome GetJson(const std::string& url, const keypool::KeyLease& key, const AttemptContext& ctx,
                                  Json* body);

  /// ListModels over GetJson: body[array_key] must be an array (else kServerError);
  /// each element becomes `to_model(element)`, skipped when its id is empty.
  keypool::AttemptOutcome GetModels(const std::string& url, const keypool::KeyLease& key, const AttemptContext& ctx,
                                    const char* array_key, const std::function<ModelInfo(const Json&)>& to_model,
                                    std::vector<ModelInfo>* out);

  int64_t NowMs() const { return clock_.NowMs(); }

  ProviderConfig config_;
  HttpClient& http_;
  keypool::Clock& clock_;
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

/// JSON helpers that never throw.
std::string JsonString(const Json& obj, const char* key);
int64_t JsonInt(const Json& obj, const char* key);

/// The factories behind MakeProvider.
std::unique_ptr<Provider> MakeOpenAIProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock);
std::unique_ptr<Provider> MakeAnthropicProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock);
std::unique_ptr<Provider> MakeGeminiProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock);

}  // namespace kpm::providers
