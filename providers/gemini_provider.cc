// The Gemini adapter (PROVIDERS.md §4): POST {base}/models/{model}:streamGenerateContent
// ?alt=sse (or :generateContent), key in x-goog-api-key (never in the URL). A stream
// has no [DONE]: it is complete once a chunk carries a finishReason.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "providers/provider_base.h"

namespace kpm::providers {
namespace {

using keypool::AttemptOutcome;
using keypool::Outcome;

std::string StripModelsPrefix(std::string name) {
  constexpr std::string_view kPrefix = "models/";
  if (name.compare(0, kPrefix.size(), kPrefix) == 0) name.erase(0, kPrefix.size());
  return name;
}

/// Why `model` cannot be the one path segment it becomes in the URL, or nullopt. These
/// characters would move the request elsewhere (`/`, `..` segments), end the path
/// (`?`, `#`), pass a pre-encoded sequence (`%`) or break the request line.
std::optional<std::string> ModelSegmentError(std::string_view model) {
  if (model.empty()) return "it is empty";
  for (char c : model) {
    auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7F) return "it contains a control character";
    if (c == ' ') return "it contains a space";
    if (c == '/' || c == '?' || c == '#' || c == '%') return std::string("it contains '") + c + "'";
  }
  return std::nullopt;
}

/// `text` with every byte but RFC 3986's unreserved ones as %XX.
std::string PercentEncoded(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    auto b = static_cast<unsigned char>(c);
    bool unreserved = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xF]);
    }
  }
  return out;
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
  if (const Json* u = JsonObject(response, "usageMetadata")) {
    c.input_tokens = JsonInt(*u, "promptTokenCount");
    c.output_tokens = JsonInt(*u, "candidatesTokenCount") + JsonInt(*u, "thoughtsTokenCount");
  }
  const Json* candidates = JsonArray(response, "candidates");
  if (candidates == nullptr || candidates->empty()) {
    std::string block;
    if (const Json* fb = JsonObject(response, "promptFeedback")) block = JsonString(*fb, "blockReason");
    if (!block.empty()) {
      // The prompt itself was refused: the same on every key (PROVIDERS §6 bad_request).
      AttemptOutcome v;
      v.outcome = Outcome::kBadRequest;
      v.message = "prompt blocked by Gemini (blockReason " + scrubber().ForDisplay(block, 100) + ")";
      state.verdict = v;
    }
    return;  // a chunk with only usage is fine
  }
  const Json& cand = candidates->front();
  if (const Json* content = JsonObject(cand, "content")) {
    if (const Json* parts = JsonArray(*content, "parts")) {
      for (const Json& p : *parts) {
        if (JsonTrue(p, "thought")) continue;  // only a boolean true marks a thought
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
  std::optional<std::string> model = ResolveModel(key, request, ctx, &early);
  if (!model) return early;
  std::string model_id = StripModelsPrefix(*model);
  if (std::optional<std::string> why = ModelSegmentError(model_id)) {
    // The caller's mistake, caught before anything is sent: no key is blamed for it.
    early.outcome = Outcome::kBadRequest;
    early.status = 0;
    early.message = "model \"" + scrubber().ForDisplay(model_id, 100) + "\" cannot be used as a Gemini model: " + *why;
    return early;
  }
  std::string url = BaseUrl(key) + "/models/" + PercentEncoded(model_id) +
                    (config().stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
  std::optional<HttpRequest> req = NewCompletionRequest(std::move(url), key, Body(request), MaxTokens(request), ctx, &early);
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
  HttpResult result = SendCompletion(*req, request, state, on_event,
                                     [&](Json response) { TakeResponse(std::move(response), state, ctx); });
  return Finish(result, state, ctx, "a chunk with a finishReason", out);
}

AttemptOutcome GeminiProvider::CheckKey(const keypool::KeyLease& key, const AttemptContext& ctx, HealthInfo*) {
  return GetJson(BaseUrl(key) + "/models?pageSize=1", key, ctx, nullptr);
}

AttemptOutcome GeminiProvider::ListModels(const keypool::KeyLease& key, const AttemptContext& ctx,
                                          std::vector<ModelInfo>* out) {
  return GetModels(
      BaseUrl(key) + "/models?pageSize=1000", key, ctx, "models",
      [](const Json& m) { return ModelInfo{StripModelsPrefix(JsonString(m, "name")), JsonString(m, "displayName")}; },
      out);
}

}  // namespace

std::unique_ptr<Provider> MakeGeminiProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock) {
  return std::make_unique<GeminiProvider>(config, http, clock);
}

}  // namespace kpm::providers
