#pragma once
/// What the three adapters share: model resolution, request timeouts bounded by the
/// call's deadline, headers (ours, then config.headers), SSE streaming over an
/// HttpClient, and the order in which a finished attempt is judged. Internal to
/// providers/.

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
};

class ProviderBase : public Provider {
 public:
  ProviderBase(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock)
      : config_(config), http_(http), clock_(clock) {}
  const ProviderConfig& config() const override { return config_; }

 protected:
  /// request.model, else config.model; else nullopt with *error a kBadRequest.
  std::optional<std::string> ResolveModel(const CompletionRequest& request, keypool::AttemptOutcome* error) const;

  /// A request with config's timeouts bounded by ctx.deadline_ms, our headers, then
  /// config.headers (which replace ours of the same name, case-insensitively).
  /// nullopt with *error a kTimeout when the deadline has already passed.
  std::optional<HttpRequest> NewRequest(std::string method, std::string url,
                                        std::vector<std::pair<std::string, std::string>> headers,
                                        const AttemptContext& ctx, keypool::AttemptOutcome* error) const;

  /// Sends `request` and feeds the body through an SSE parser to `on_event`, which
  /// returns false to stop reading (after an error chunk or a malformed one).
  HttpResult SendSse(const HttpRequest& request, const std::function<bool(const SseEvent&)>& on_event);

  /// Judges a finished completion attempt, in this order: cancelled; no answer
  /// (network, timeout before headers); non-2xx status (error body); an in-band
  /// error; the adapter's own verdict; malformed; a timeout mid-body; no terminator
  /// (`terminator` names it in the message); empty answer text; else kOk. Limits
  /// from the headers are attached to every outcome.
  keypool::AttemptOutcome Judge(const HttpResult& result, const StreamState& state, const AttemptContext& ctx,
                                std::string_view terminator) const;

  /// A GET (CheckKey / ListModels): the parsed JSON body on kOk, else the outcome.
  keypool::AttemptOutcome GetJson(const std::string& url, std::vector<std::pair<std::string, std::string>> headers,
                                  const AttemptContext& ctx, Json* body);

  int64_t NowMs() const { return clock_.NowMs(); }

  ProviderConfig config_;
  HttpClient& http_;
  keypool::Clock& clock_;
};

/// Sends on_text(count) if the callback is set.
inline void ReportText(const AttemptContext& ctx, size_t count) {
  if (ctx.on_text) ctx.on_text(count);
}

/// JSON helpers that never throw.
std::string JsonString(const Json& obj, const char* key);
int64_t JsonInt(const Json& obj, const char* key);

/// The factories behind MakeProvider.
std::unique_ptr<Provider> MakeOpenAIProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock);
std::unique_ptr<Provider> MakeAnthropicProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock);
std::unique_ptr<Provider> MakeGeminiProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock);

}  // namespace kpm::providers
