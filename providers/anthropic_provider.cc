// The Anthropic Messages adapter (PROVIDERS.md §3): POST {base}/messages with
// x-api-key and anthropic-version, streamed as named SSE events ending in
// `message_stop`; `event: error` inside the 200 carries a mid-stream failure.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "providers/provider_base.h"

namespace kpm::providers {
namespace {

using keypool::AttemptOutcome;

class AnthropicProvider : public ProviderBase {
 public:
  using ProviderBase::ProviderBase;

  AttemptOutcome Complete(const keypool::KeyLease& key, const CompletionRequest& request, const AttemptContext& ctx,
                          Completion* out) override;
  AttemptOutcome CheckKey(const keypool::KeyLease& key, const AttemptContext& ctx, HealthInfo* out) override;
  AttemptOutcome ListModels(const keypool::KeyLease& key, const AttemptContext& ctx,
                            std::vector<ModelInfo>* out) override;

 private:
  HeaderList KeyHeaders(const keypool::KeyLease& key) const override {
    HeaderList h;
    if (!key.secret.empty()) h.emplace_back("x-api-key", key.secret);
    h.emplace_back("anthropic-version", "2023-06-01");
    return h;
  }

  Json Body(const CompletionRequest& request, const std::string& model) const;
  /// One SSE event's JSON into `state`.
  void TakeEvent(const std::string& name, const Json& data, StreamState& state, const AttemptContext& ctx) const;
  /// The whole non-streaming body into `state`.
  void TakeMessage(const Json& msg, StreamState& state, const AttemptContext& ctx) const;
};

Json AnthropicProvider::Body(const CompletionRequest& request, const std::string& model) const {
  // `system` is a top-level field; system-role messages join it.
  std::string system = JoinedSystemPrompt(request);
  Json messages = Json::array();
  for (const ChatMessage& m : request.messages) {
    if (m.role == "system") continue;
    messages.push_back({{"role", m.role == "assistant" ? "assistant" : "user"}, {"content", m.content}});
  }
  // max_tokens is required by the API: a config built without the loader still sends one.
  int max_tokens = MaxTokens(request).value_or(*DefaultMaxTokens(ProviderType::kAnthropic));
  Json body = {{"model", model}, {"max_tokens", max_tokens}, {"messages", messages}};
  if (!system.empty()) body["system"] = system;
  if (request.temperature) body["temperature"] = *request.temperature;
  if (config().stream) body["stream"] = true;
  return body;
}

void AnthropicProvider::TakeEvent(const std::string& name, const Json& data, StreamState& state,
                                  const AttemptContext& ctx) const {
  Completion& c = state.completion;
  std::string type = JsonString(data, "type");
  if (type.empty()) type = name;
  if (type == "error" || name == "error") {
    const Json* error = JsonMember(data, "error");
    state.inband_error = error != nullptr ? *error : data;
  } else if (type == "message_start") {
    if (const Json* m = JsonObject(data, "message")) {
      if (std::string model = JsonString(*m, "model"); !model.empty()) c.model = model;
      if (const Json* u = JsonObject(*m, "usage")) c.input_tokens = JsonInt(*u, "input_tokens");
    }
  } else if (type == "content_block_delta") {
    if (const Json* d = JsonObject(data, "delta"); d != nullptr && JsonString(*d, "type") == "text_delta") {
      c.text += JsonString(*d, "text");
      ReportText(ctx, c.text.size());
    }
  } else if (type == "message_delta") {
    if (const Json* d = JsonObject(data, "delta")) {
      if (std::string stop = JsonString(*d, "stop_reason"); !stop.empty()) c.finish_reason = stop;
    }
    if (const Json* u = JsonObject(data, "usage")) {
      if (JsonMember(*u, "output_tokens") != nullptr) c.output_tokens = JsonInt(*u, "output_tokens");
      if (JsonInt(*u, "input_tokens") > 0) c.input_tokens = JsonInt(*u, "input_tokens");
    }
  } else if (type == "message_stop") {
    state.done = true;
  }
  // ping, content_block_start/stop and unknown events carry nothing we need.
}

void AnthropicProvider::TakeMessage(const Json& msg, StreamState& state, const AttemptContext& ctx) const {
  if (TakeErrorOrMalformed(msg, "not a JSON object", state)) return;
  if (JsonString(msg, "type") == "error") {
    const Json* error = JsonMember(msg, "error");
    state.inband_error = error != nullptr ? *error : msg;
    return;
  }
  const Json* content = JsonArray(msg, "content");
  if (content == nullptr) {
    state.MarkMalformed("no content array");
    return;
  }
  Completion& c = state.completion;
  for (const Json& block : *content) {
    if (JsonString(block, "type") == "text") c.text += JsonString(block, "text");
  }
  if (!c.text.empty()) ReportText(ctx, c.text.size());
  if (std::string model = JsonString(msg, "model"); !model.empty()) c.model = model;
  c.finish_reason = JsonString(msg, "stop_reason");
  if (const Json* u = JsonObject(msg, "usage")) {
    c.input_tokens = JsonInt(*u, "input_tokens");
    c.output_tokens = JsonInt(*u, "output_tokens");
  }
  state.done = true;
}

AttemptOutcome AnthropicProvider::Complete(const keypool::KeyLease& key, const CompletionRequest& request,
                                           const AttemptContext& ctx, Completion* out) {
  AttemptOutcome early;
  std::optional<std::string> model = ResolveModel(key, request, ctx, &early);
  if (!model) return early;
  std::optional<HttpRequest> req =
      NewCompletionRequest(BaseUrl(key) + "/messages", key, Body(request, *model), MaxTokens(request), ctx, &early);
  if (!req) return early;

  StreamState state;
  state.completion.model = *model;
  auto on_event = [&](const SseEvent& event) {
    if (state.done) return true;
    Json data = Json::parse(event.data, nullptr, false);
    if (data.is_discarded() || !data.is_object()) {
      state.MarkMalformed("an event that is not a JSON object");
      return false;
    }
    TakeEvent(event.event, data, state, ctx);
    return state.inband_error.is_null();
  };
  HttpResult result =
      SendCompletion(*req, request, state, on_event, [&](Json msg) { TakeMessage(msg, state, ctx); });
  return Finish(result, state, ctx, "event: message_stop", out);
}

AttemptOutcome AnthropicProvider::CheckKey(const keypool::KeyLease& key, const AttemptContext& ctx, HealthInfo*) {
  return GetJson(BaseUrl(key) + "/models?limit=1", key, ctx, nullptr);
}

AttemptOutcome AnthropicProvider::ListModels(const keypool::KeyLease& key, const AttemptContext& ctx,
                                             std::vector<ModelInfo>* out) {
  return GetModels(
      BaseUrl(key) + "/models?limit=1000", key, ctx, "data",
      [](const Json& m) { return ModelInfo{JsonString(m, "id"), JsonString(m, "display_name")}; }, out);
}

}  // namespace

std::unique_ptr<Provider> MakeAnthropicProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock) {
  return std::make_unique<AnthropicProvider>(config, http, clock);
}

}  // namespace kpm::providers
