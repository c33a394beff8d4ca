// The Gemini adapter (PROVIDERS.md §4): POST {base}/models/{model}:streamGenerateContent
// ?alt=sse (or :generateContent), key in x-goog-api-key (never in the URL). A stream
// has no [DONE]: it is complete once a chunk carries a finishReason.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "providers/provider_common.h"

namespace kpm::providers {
namespace {

using keypool::AttemptOutcome;
using keypool::Outcome;

std::string StripModelsPrefix(std::string name) {
  constexpr std::string_view kPrefix = "models/";
  if (name.compare(0, kPrefix.size(), kPrefix) == 0) name.erase(0, kPrefix.size());
  return name;
}

class GeminiProvider : public ProviderBase {
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
    if (!key.secret.empty()) h.emplace_back("x-goog-api-key", key.secret);
    return h;
  }

  Json Body(const CompletionRequest& request) const;
  /// One GenerateContentResponse (a stream chunk or the whole body) into `state`.
  void TakeResponse(Json response, StreamState& state, const AttemptContext& ctx) const;
};

Json GeminiProvider::Body(const CompletionRequest& request) const {
  std::string system = JoinedSystemPrompt(request);
  Json contents = Json::array();
  for (const ChatMessage& m : request.messages) {
    if (m.role == "system") continue;
    contents.push_back(
        {{"role", m.role == "assistant" ? "model" : "user"}, {"parts", Json::array({{{"text", m.content}}})}});
  }
  Json body = {{"contents", contents}};
  if (!system.empty()) body["systemInstruction"] = {{"parts", Json::array({{{"text", system}}})}};
  Json gen = Json::object();
  if (std::optional<int> max_tokens = MaxTokens(request)) gen["maxOutputTokens"] = *max_tokens;
  if (request.temperature) gen["temperature"] = *request.temperature;
  if (!gen.empty()) body["generationConfig"] = gen;
  return body;
}

void GeminiProvider::TakeResponse(Json response, StreamState& state, const AttemptContext& ctx) const {
  if (response.is_array() && response.size() == 1) response = response[0];
  if (TakeErrorOrMalformed(response, "not a JSON object", state)) return;
  Completion& c = state.completion;
  if (std::string v = JsonString(response, "modelVersion"); !v.empty()) c.model = v;
  if (auto u = response.find("usageMetadata"); u != response.end() && u->is_object()) {
    c.input_tokens = JsonInt(*u, "promptTokenCount");
    c.output_tokens = JsonInt(*u, "candidatesTokenCount") + JsonInt(*u, "thoughtsTokenCount");
  }
  auto candidates = response.find("candidates");
  if (candidates == response.end() || !candidates->is_array() || candidates->empty()) {
    std::string block;
    if (auto fb = response.find("promptFeedback"); fb != response.end()) block = JsonString(*fb, "blockReason");
    if (!block.empty()) {
      // The prompt itself was refused: the same on every key (PROVIDERS §6 bad_request).
      AttemptOutcome v;
      v.outcome = Outcome::kBadRequest;
      v.message = "prompt blocked by Gemini (blockReason " + block + ")";
      state.verdict = v;
    }
    return;  // a chunk with only usage is fine
  }
  const Json& cand = (*candidates)[0];
  if (auto content = cand.find("content"); content != cand.end() && content->is_object()) {
    if (auto parts = content->find("parts"); parts != content->end() && parts->is_array()) {
      for (const Json& p : *parts) {
        if (p.is_object() && p.value("thought", false) == true) continue;
        c.text += JsonString(p, "text");
      }
      ReportText(ctx, c.text.size());
    }
  }
  if (std::string finish = JsonString(cand, "finishReason"); !finish.empty()) {
    c.finish_reason = finish;
    state.done = true;
  }
}

AttemptOutcome GeminiProvider::Complete(const keypool::KeyLease& key, const CompletionRequest& request,
                                        const AttemptContext& ctx, Completion* out) {
  AttemptOutcome early;
  std::optional<std::string> model = ResolveModel(request, &early);
  if (!model) return early;
  std::string model_id = StripModelsPrefix(*model);
  std::string url = config_.base_url + "/models/" + model_id +
                    (config_.stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
  std::optional<HttpRequest> req = NewCompletionRequest(std::move(url), key, Body(request), ctx, &early);
  if (!req) return early;

  StreamState state;
  state.completion.model = model_id;
  auto on_event = [&](const SseEvent& event) {
    Json chunk = Json::parse(event.data, nullptr, false);
    if (chunk.is_discarded()) {
      state.MarkMalformed("a chunk that is not JSON");
      return false;
    }
    TakeResponse(std::move(chunk), state, ctx);
    return !state.malformed && state.inband_error.is_null() && !state.verdict;
  };
  HttpResult result =
      SendCompletion(*req, state, on_event, [&](Json response) { TakeResponse(std::move(response), state, ctx); });
  return Finish(result, state, ctx, "a chunk with a finishReason", out);
}

AttemptOutcome GeminiProvider::CheckKey(const keypool::KeyLease& key, const AttemptContext& ctx, HealthInfo*) {
  return GetJson(config_.base_url + "/models?pageSize=1", key, ctx, nullptr);
}

AttemptOutcome GeminiProvider::ListModels(const keypool::KeyLease& key, const AttemptContext& ctx,
                                          std::vector<ModelInfo>* out) {
  return GetModels(
      config_.base_url + "/models?pageSize=1000", key, ctx, "models",
      [](const Json& m) { return ModelInfo{StripModelsPrefix(JsonString(m, "name")), JsonString(m, "displayName")}; },
      out);
}

}  // namespace

std::unique_ptr<Provider> MakeGeminiProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock) {
  return std::make_unique<GeminiProvider>(config, http, clock);
}

}  // namespace kpm::providers
