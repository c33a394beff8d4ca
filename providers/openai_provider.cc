// The OpenAI Chat Completions adapter, for openai, openrouter and openai-compatible
// (PROVIDERS.md §1-2): POST {base}/chat/completions, streamed as bare `data:` chunks
// ending in `data: [DONE]`.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "providers/provider_base.h"

namespace kpm::providers {
namespace {

using keypool::AttemptOutcome;
using keypool::Outcome;

class OpenAIProvider : public ProviderBase {
 public:
  using ProviderBase::ProviderBase;

  AttemptOutcome Complete(const keypool::KeyLease& key, const CompletionRequest& request, const AttemptContext& ctx,
                          Completion* out) override;
  AttemptOutcome CheckKey(const keypool::KeyLease& key, const AttemptContext& ctx, HealthInfo* out) override;
  AttemptOutcome ListModels(const keypool::KeyLease& key, const AttemptContext& ctx,
                            std::vector<ModelInfo>* out) override;

 private:
  bool IsOpenRouter() const { return config().type == ProviderType::kOpenRouter; }

  HeaderList KeyHeaders(const keypool::KeyLease& key) const override {
    HeaderList h;
    if (!key.secret.empty()) h.emplace_back("Authorization", "Bearer " + key.secret);
    if (IsOpenRouter()) {
      // Attribution; config.headers can replace it (or add HTTP-Referer).
      h.emplace_back("X-OpenRouter-Title", "keypool-mcp");
    }
    return h;
  }

  Json Body(const CompletionRequest& request, const std::string& model) const;
  /// One chunk (streaming) or the whole body (non-streaming) into `state`.
  void TakeChunk(const Json& chunk, bool streaming, StreamState& state, const AttemptContext& ctx) const;
};

Json OpenAIProvider::Body(const CompletionRequest& request, const std::string& model) const {
  Json messages = Json::array();
  if (!request.system.empty()) messages.push_back({{"role", "system"}, {"content", request.system}});
  for (const ChatMessage& m : request.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
  Json body = {{"model", model}, {"messages", messages}};
  if (std::optional<int> max_tokens = MaxTokens(request)) {
    // Reasoning models reject max_tokens on OpenAI; other servers may not know the new name.
    body[config().type == ProviderType::kOpenAI ? "max_completion_tokens" : "max_tokens"] = *max_tokens;
  }
  if (request.temperature) body["temperature"] = *request.temperature;
  if (config().stream) {
    body["stream"] = true;
    // OpenRouter always sends usage and calls the option deprecated.
    if (!IsOpenRouter()) body["stream_options"] = {{"include_usage", true}};
  }
  return body;
}

void OpenAIProvider::TakeChunk(const Json& chunk, bool streaming, StreamState& state, const AttemptContext& ctx) const {
  if (TakeErrorOrMalformed(chunk, "a chunk that is not a JSON object", state)) return;
  Completion& c = state.completion;
  if (std::string model = JsonString(chunk, "model"); !model.empty()) c.model = model;
  if (const Json* usage = JsonObject(chunk, "usage")) {
    c.input_tokens = JsonInt(*usage, "prompt_tokens");
    c.output_tokens = JsonInt(*usage, "completion_tokens");
  }
  const Json* choices = JsonArray(chunk, "choices");
  if (choices == nullptr) {
    if (!streaming) state.MarkMalformed("no choices");
    return;  // the usage-only chunk has "choices": []
  }
  if (choices->empty()) return;
  const Json& choice = choices->front();
  if (const Json* part = JsonObject(choice, streaming ? "delta" : "message")) {
    std::string text = JsonString(*part, "content");
    if (text.empty() && !streaming) text = JsonString(*part, "refusal");
    if (!text.empty()) {
      c.text += text;
      ReportText(ctx, c.text.size());
    }
  } else if (!streaming) {
    state.MarkMalformed("no choices[0].message");
  }
  if (std::string finish = JsonString(choice, "finish_reason"); !finish.empty()) c.finish_reason = finish;
}

AttemptOutcome OpenAIProvider::Complete(const keypool::KeyLease& key, const CompletionRequest& request,
                                        const AttemptContext& ctx, Completion* out) {
  AttemptOutcome early;
  std::optional<std::string> model = ResolveModel(key, request, ctx, &early);
  if (!model) return early;
  std::optional<HttpRequest> req =
      NewCompletionRequest(BaseUrl(key) + "/chat/completions", key, Body(request, *model), MaxTokens(request), ctx, &early);
  if (!req) return early;

  StreamState state;
  state.completion.model = *model;
  auto on_event = [&](const SseEvent& event) {
    if (state.done) return true;  // nothing counts after [DONE]
    if (event.data == "[DONE]") {
      state.done = true;
      return true;  // read on to the end so the connection can be reused
    }
    Json chunk = Json::parse(event.data, nullptr, false);
    if (chunk.is_discarded()) {
      state.MarkMalformed("a chunk that is not JSON");
      return false;
    }
    TakeChunk(chunk, true, state, ctx);
    return !state.malformed && state.inband_error.is_null();
  };
  auto on_body = [&](Json doc) {
    if (doc.is_discarded()) {
      state.MarkMalformed("a body that is not JSON");
    } else {
      TakeChunk(doc, false, state, ctx);
    }
    state.done = true;  // no terminator in a whole body; SendCompletion clears this if it was cut
  };
  HttpResult result = SendCompletion(*req, request, state, on_event, on_body);
  // A finish_reason of "error" (OpenRouter) without an error object is still a failure.
  if (state.inband_error.is_null() && state.completion.finish_reason == "error") {
    state.inband_error = Json{{"message", "finish_reason error"}};
  }
  return Finish(result, state, ctx, "data: [DONE]", out);
}

AttemptOutcome OpenAIProvider::CheckKey(const keypool::KeyLease& key, const AttemptContext& ctx, HealthInfo* out) {
  if (!IsOpenRouter()) return GetJson(BaseUrl(key) + "/models", key, ctx, nullptr);
  // OpenRouter's /models is public: /key is the call that validates the key.
  Json body;
  AttemptOutcome outcome = GetJson(BaseUrl(key) + "/key", key, ctx, &body);
  if (outcome.outcome != Outcome::kOk) return outcome;
  const Json* data = JsonObject(body, "data");
  if (data == nullptr) return MalformedBody(outcome, "no data object");
  const Json* rem = JsonMember(*data, "limit_remaining");
  if (rem == nullptr || rem->is_null()) {
    out->credit_known_positive = true;  // no cap on this key
    out->credit_remaining.reset();
  } else if (std::optional<double> left = JsonDouble(*data, "limit_remaining")) {
    out->credit_remaining = *left;
    out->credit_known_positive = *left > 0;
  }
  return outcome;
}

AttemptOutcome OpenAIProvider::ListModels(const keypool::KeyLease& key, const AttemptContext& ctx,
                                          std::vector<ModelInfo>* out) {
  return GetModels(
      BaseUrl(key) + "/models", key, ctx, "data",
      [](const Json& m) { return ModelInfo{JsonString(m, "id"), JsonString(m, "name")}; }, out);
}

}  // namespace

std::unique_ptr<Provider> MakeOpenAIProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock) {
  return std::make_unique<OpenAIProvider>(config, http, clock);
}

}  // namespace kpm::providers
