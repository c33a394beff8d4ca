#include "tests/support/mock_reply.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <utility>

#include <nlohmann/json.hpp>

#include "tests/support/mock_errors.h"

namespace kpm::testing {
namespace {

// ordered_json keeps fields in the order the real APIs send them, which makes the
// mock's output easy to compare with PROVIDERS.md by eye.
using Json = nlohmann::ordered_json;
using K = MockStep::Kind;

// ---------------------------------------------------------------- small helpers

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

long long EpochSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

long long EpochMillis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

/// Streamed text pieces: one per word (the space stays with the word before it).
std::vector<std::string> SplitText(std::string_view text) {
  std::vector<std::string> pieces;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ' ') {
      pieces.emplace_back(text.substr(start, i + 1 - start));
      start = i + 1;
    }
  }
  if (start < text.size()) pieces.emplace_back(text.substr(start));
  if (pieces.size() == 1 && text.size() >= 2) {  // one word still streams in two pieces
    pieces = {std::string(text.substr(0, text.size() / 2)),
              std::string(text.substr(text.size() / 2))};
  }
  return pieces;
}

std::string SseData(const Json& j) { return "data: " + j.dump() + "\n\n"; }
std::string SseEvent(std::string_view name, const Json& j) {
  return "event: " + std::string(name) + "\ndata: " + j.dump() + "\n\n";
}
// Gemini frames with CRLF (observed in the wild); parsers must accept both.
std::string GeminiData(const Json& j) { return "data: " + j.dump() + "\r\n\r\n"; }

// ---------------------------------------------------------------- successes

struct Usage {
  int input = 1;
  int output = 0;
};

/// Rate-limit headers a success carries; `remaining0` makes the request budget 0.
void AddRateHeaders(const MockCall& call, const MockStep& step, MockReply& reply) {
  bool zero = step.kind == K::kRemaining0;
  auto reset = std::chrono::milliseconds(zero ? step.ms : 1000);
  switch (call.flavor) {
    case Flavor::kOpenAi:
      reply.headers["x-request-id"] = "req_mock_" + std::to_string(call.id);
      reply.headers["x-ratelimit-limit-requests"] = "500";
      reply.headers["x-ratelimit-remaining-requests"] = zero ? "0" : "499";
      reply.headers["x-ratelimit-reset-requests"] = MockSeconds(reset.count() / 1000.0) + "s";
      reply.headers["x-ratelimit-limit-tokens"] = "30000";
      reply.headers["x-ratelimit-remaining-tokens"] = "29000";
      reply.headers["x-ratelimit-reset-tokens"] = "2s";
      break;
    case Flavor::kOpenRouter:
      // Successes carry no X-RateLimit-*; remaining0 borrows the 429's headers.
      reply.headers["x-generation-id"] = "gen-mock-" + std::to_string(call.id);
      if (zero) {
        reply.headers["x-ratelimit-limit"] = "20";
        reply.headers["x-ratelimit-remaining"] = "0";
        reply.headers["x-ratelimit-reset"] = std::to_string(EpochMillis(call.now + reset));
      }
      break;
    case Flavor::kAnthropic: {
      reply.headers["request-id"] = "req_mock_" + std::to_string(call.id);
      reply.headers["anthropic-ratelimit-requests-limit"] = "50";
      reply.headers["anthropic-ratelimit-requests-remaining"] = zero ? "0" : "49";
      reply.headers["anthropic-ratelimit-requests-reset"] = Rfc3339(call.now + reset);
      reply.headers["anthropic-ratelimit-tokens-limit"] = "40000";
      reply.headers["anthropic-ratelimit-tokens-remaining"] = "39000";
      reply.headers["anthropic-ratelimit-tokens-reset"] = Rfc3339(call.now + std::chrono::seconds(2));
      break;
    }
    case Flavor::kGemini:
      break;  // Gemini sends no rate-limit headers at all
  }
}

Json OpenAiChunk(const MockCall& call, Json delta, Json finish) {
  Json choice = {{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr},
                 {"finish_reason", finish}};
  if (call.flavor == Flavor::kOpenRouter && !finish.is_null()) choice["native_finish_reason"] = finish;
  Json chunk = {{"id", (call.flavor == Flavor::kOpenRouter ? "gen-mock-" : "chatcmpl-mock-") +
                           std::to_string(call.id)},
                {"object", "chat.completion.chunk"},
                {"created", EpochSeconds(call.now)},
                {"model", MockModelOr(call, "gpt-mock")}};
  if (call.flavor == Flavor::kOpenRouter) chunk["provider"] = "MockProvider";
  chunk["choices"] = Json::array({choice});
  if (call.flavor == Flavor::kOpenAi && call.include_usage) chunk["usage"] = nullptr;
  return chunk;
}

Json OpenAiUsage(const Usage& u) {
  return {{"prompt_tokens", u.input},
          {"completion_tokens", u.output},
          {"total_tokens", u.input + u.output}};
}

/// The stream's events: preamble, the first `limit` pieces, and the end when `finish`.
std::vector<std::string> StreamEvents(const MockCall& call, const std::vector<std::string>& pieces,
                                      size_t limit, bool finish, const Usage& usage) {
  std::vector<std::string> out;
  limit = std::min(limit, pieces.size());
  switch (call.flavor) {
    case Flavor::kOpenAi:
    case Flavor::kOpenRouter: {
      if (call.flavor == Flavor::kOpenRouter) out.push_back(": OPENROUTER PROCESSING\n\n");
      out.push_back(SseData(OpenAiChunk(call, {{"role", "assistant"}, {"content", ""}}, nullptr)));
      for (size_t i = 0; i < limit; ++i)
        out.push_back(SseData(OpenAiChunk(call, {{"content", pieces[i]}}, nullptr)));
      if (!finish) break;
      out.push_back(SseData(OpenAiChunk(call, Json::object(), "stop")));
      // OpenRouter always reports usage (include_usage is ignored there).
      if (call.include_usage || call.flavor == Flavor::kOpenRouter) {
        Json last = OpenAiChunk(call, Json::object(), nullptr);
        last["choices"] = Json::array();
        last["usage"] = OpenAiUsage(usage);
        out.push_back(SseData(last));
      }
      out.push_back("data: [DONE]\n\n");
      break;
    }
    case Flavor::kAnthropic: {
      Json message = {{"id", "msg_mock_" + std::to_string(call.id)},
                      {"type", "message"},
                      {"role", "assistant"},
                      {"model", MockModelOr(call, "claude-mock-1")},
                      {"content", Json::array()},
                      {"stop_reason", nullptr},
                      {"stop_sequence", nullptr},
                      {"usage", {{"input_tokens", usage.input}, {"output_tokens", 1}}}};
      out.push_back(SseEvent("message_start", {{"type", "message_start"}, {"message", message}}));
      out.push_back(SseEvent("content_block_start",
                             {{"type", "content_block_start"},
                              {"index", 0},
                              {"content_block", {{"type", "text"}, {"text", ""}}}}));
      out.push_back(SseEvent("ping", {{"type", "ping"}}));
      for (size_t i = 0; i < limit; ++i)
        out.push_back(SseEvent("content_block_delta",
                               {{"type", "content_block_delta"},
                                {"index", 0},
                                {"delta", {{"type", "text_delta"}, {"text", pieces[i]}}}}));
      if (!finish) break;
      out.push_back(SseEvent("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}}));
      out.push_back(SseEvent("message_delta",
                             {{"type", "message_delta"},
                              {"delta", {{"stop_reason", "end_turn"}, {"stop_sequence", nullptr}}},
                              {"usage", {{"output_tokens", usage.output}}}}));
      out.push_back(SseEvent("message_stop", {{"type", "message_stop"}}));
      break;
    }
    case Flavor::kGemini: {
      size_t n = finish ? std::max<size_t>(limit, 1) : limit;
      for (size_t i = 0; i < n; ++i) {
        bool last = finish && i + 1 == n;
        Json candidate = {{"content",
                           {{"parts", {{{"text", i < limit ? pieces[i] : std::string()}}}},
                            {"role", "model"}}}};
        if (last) candidate["finishReason"] = "STOP";
        candidate["index"] = 0;
        Json meta = {{"promptTokenCount", usage.input}};
        if (last) {
          meta["candidatesTokenCount"] = usage.output;
          meta["totalTokenCount"] = usage.input + usage.output;
        } else {
          meta["totalTokenCount"] = usage.input;
        }
        Json chunk = {{"candidates", Json::array({candidate})},
                      {"usageMetadata", meta},
                      {"modelVersion", MockModelOr(call, "gemini-mock")},
                      {"responseId", "mock-" + std::to_string(call.id)}};
        out.push_back(GeminiData(chunk));
      }
      break;
    }
  }
  return out;
}

/// The whole (non-streamed) answer body for a completion.
Json CompletionBody(const MockCall& call, const std::string& text, const Usage& usage) {
  switch (call.flavor) {
    case Flavor::kOpenAi:
    case Flavor::kOpenRouter: {
      Json message = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
      Json body = {{"id", (call.flavor == Flavor::kOpenRouter ? "gen-mock-" : "chatcmpl-mock-") +
                              std::to_string(call.id)},
                   {"object", "chat.completion"},
                   {"created", EpochSeconds(call.now)},
                   {"model", MockModelOr(call, "gpt-mock")}};
      if (call.flavor == Flavor::kOpenRouter) body["provider"] = "MockProvider";
      Json choice = {{"index", 0}, {"message", message}, {"logprobs", nullptr},
                     {"finish_reason", "stop"}};
      if (call.flavor == Flavor::kOpenRouter) choice["native_finish_reason"] = "stop";
      body["choices"] = Json::array({choice});
      body["usage"] = OpenAiUsage(usage);
      return body;
    }
    case Flavor::kAnthropic: {
      Json content = Json::array();
      if (!text.empty()) content.push_back({{"type", "text"}, {"text", text}});
      return {{"id", "msg_mock_" + std::to_string(call.id)},
              {"type", "message"},
              {"role", "assistant"},
              {"model", MockModelOr(call, "claude-mock-1")},
              {"content", content},
              {"stop_reason", "end_turn"},
              {"stop_sequence", nullptr},
              {"usage", {{"input_tokens", usage.input}, {"output_tokens", usage.output}}}};
    }
    case Flavor::kGemini:
      return {{"candidates",
               {{{"content", {{"parts", {{{"text", text}}}}, {"role", "model"}}},
                 {"finishReason", "STOP"},
                 {"index", 0}}}},
              {"usageMetadata",
               {{"promptTokenCount", usage.input},
                {"candidatesTokenCount", usage.output},
                {"totalTokenCount", usage.input + usage.output}}},
              {"modelVersion", MockModelOr(call, "gemini-mock")},
              {"responseId", "mock-" + std::to_string(call.id)}};
  }
  return Json::object();
}

Json ModelsBody(const MockCall& call, bool empty) {
  switch (call.flavor) {
    case Flavor::kOpenAi: {
      Json data = Json::array();
      if (!empty) {
        for (const char* id : {"gpt-mock", "gpt-mock-mini"})
          data.push_back({{"id", id}, {"object", "model"}, {"created", 1700000000},
                          {"owned_by", "mock-upstream"}});
      }
      return {{"object", "list"}, {"data", data}};
    }
    case Flavor::kOpenRouter: {
      Json data = Json::array();
      if (!empty) {
        data.push_back({{"id", "mock/model-1"}, {"name", "Mock: Model 1"},
                        {"created", 1700000000}, {"context_length", 128000},
                        {"pricing", {{"prompt", "0"}, {"completion", "0"}}}});
      }
      return {{"data", data}};
    }
    case Flavor::kAnthropic: {
      Json data = Json::array();
      if (!empty) {
        data.push_back({{"type", "model"}, {"id", "claude-mock-1"},
                        {"display_name", "Claude Mock 1"},
                        {"created_at", "2025-01-01T00:00:00Z"}});
      }
      Json first = empty ? Json(nullptr) : Json("claude-mock-1");
      return {{"data", data}, {"has_more", false}, {"first_id", first}, {"last_id", first}};
    }
    case Flavor::kGemini: {
      Json models = Json::array();
      if (!empty) {
        models.push_back({{"name", "models/gemini-mock"}, {"version", "001"},
                          {"displayName", "Gemini Mock"}, {"inputTokenLimit", 1048576},
                          {"outputTokenLimit", 8192},
                          {"supportedGenerationMethods", {"generateContent", "countTokens"}}});
      }
      return {{"models", models}};
    }
  }
  return Json::object();
}

Json KeyBody(const MockCall& call) {
  return {{"data",
           {{"label", MockMaskedKey(call.key)}, {"limit", nullptr}, {"limit_remaining", nullptr},
            {"limit_reset", nullptr}, {"usage", 0.25}, {"usage_daily", 0.05},
            {"usage_weekly", 0.1}, {"usage_monthly", 0.25}, {"is_free_tier", false},
            {"is_provisioning_key", false}}}};
}

/// A successful body of the endpoint (the text matters only for completions).
Json SuccessBody(const MockCall& call, const std::string& text, const Usage& usage, bool empty) {
  switch (call.endpoint) {
    case Endpoint::kChat: return CompletionBody(call, text, usage);
    case Endpoint::kModels: return ModelsBody(call, empty);
    case Endpoint::kKey: return KeyBody(call);
  }
  return Json::object();
}

bool Streams(const MockCall& call) { return call.endpoint == Endpoint::kChat && call.stream; }

std::string DefaultInbandError(Flavor flavor) {
  return flavor == Flavor::kAnthropic ? "529" : "503";
}

/// The in-band error event that follows a good start.
std::string InbandEvent(const MockCall& call, const MockError& err) {
  switch (call.flavor) {
    case Flavor::kOpenAi: return SseData(err.body);
    case Flavor::kOpenRouter: {
      Json chunk = OpenAiChunk(call, {{"content", ""}}, "error");
      Json error = err.body["error"];
      // The error sits before "choices", as in OpenRouter's docs.
      Json ordered = {{"id", chunk["id"]}, {"object", chunk["object"]},
                      {"created", chunk["created"]}, {"model", chunk["model"]},
                      {"provider", chunk["provider"]}, {"error", error},
                      {"choices", chunk["choices"]}};
      return SseData(ordered);
    }
    case Flavor::kAnthropic: return SseEvent("error", err.body);
    case Flavor::kGemini: return GeminiData(err.body);
  }
  return {};
}

void SetBody(MockReply& reply, const Json& body) {
  reply.body = body.dump();
  reply.content_type = "application/json";
}

void SetStream(const MockCall& call, MockReply& reply, std::vector<std::string> events) {
  reply.chunked = true;
  reply.pieces = std::move(events);
  if (call.flavor == Flavor::kGemini && !call.gemini_sse) {
    // streamGenerateContent without alt=sse: one JSON array growing chunk by chunk.
    std::vector<std::string> array;
    for (size_t i = 0; i < reply.pieces.size(); ++i) {
      std::string json = reply.pieces[i].substr(6);  // drop "data: " and the blank line
      while (!json.empty() && (json.back() == '\n' || json.back() == '\r')) json.pop_back();
      array.push_back((i == 0 ? "[" : ",\r\n") + json);
    }
    if (!reply.cut) array.push_back("]");
    reply.pieces = std::move(array);
    reply.content_type = "application/json";
    return;
  }
  reply.content_type = "text/event-stream";
  reply.headers["cache-control"] = "no-cache";
}

}  // namespace

std::string_view FlavorName(Flavor flavor) {
  switch (flavor) {
    case Flavor::kOpenAi: return "openai";
    case Flavor::kOpenRouter: return "openrouter";
    case Flavor::kAnthropic: return "anthropic";
    case Flavor::kGemini: return "gemini";
  }
  return "unknown";
}

MockReply BuildMockReply(const MockCall& call, const MockStep& step) {
  MockReply reply;
  const std::string text = step.text ? *step.text : std::string(kMockDefaultText);
  const std::vector<std::string> pieces = SplitText(step.kind == K::kEmpty ? "" : text);
  const Usage usage{std::max(1, call.prompt_tokens), static_cast<int>(pieces.size())};

  auto error_reply = [&](const std::string& name) {
    MockError err = BuildMockError(call, name, step);
    reply.status = err.status;
    reply.headers = err.headers;
    SetBody(reply, err.body);
  };

  switch (step.kind) {
    case K::kDelay: {
      static const MockStep kOk{};
      reply = BuildMockReply(call, step.then ? *step.then : kOk);
      reply.delay_ms += step.ms;
      break;
    }
    case K::kHang:
      reply.hang = true;
      reply.hang_ms = step.ms;
      break;
    case K::kDrop:
      reply.drop = true;
      break;
    case K::kError:
      error_reply(step.error);
      break;
    case K::kEchoKey:
      error_reply("echo_key");
      break;
    case K::kRaw: {
      reply.status = step.status;
      reply.body = step.body;
      Json parsed = Json::parse(step.body, nullptr, false);
      reply.content_type = parsed.is_discarded() ? "text/plain" : "application/json";
      break;
    }
    case K::kMalformed:
      if (Streams(call)) {
        const char* end = call.flavor == Flavor::kGemini ? "\r\n\r\n" : "\n\n";
        std::vector<std::string> events = {
            std::string("data: {\"id\":\"mock\",\"choices\":[{\"delta\":") + end,
            std::string("data: this is not json") + end};
        if (call.flavor == Flavor::kOpenAi || call.flavor == Flavor::kOpenRouter)
          events.push_back("data: [DONE]\n\n");
        if (call.flavor == Flavor::kAnthropic)
          events.push_back(SseEvent("message_stop", {{"type", "message_stop"}}));
        SetStream(call, reply, std::move(events));
      } else {
        reply.body = "<html><body><h1>502 Bad Gateway</h1>not json {</body></html>";
        reply.content_type = "application/json";
      }
      break;
    case K::kCut:
      reply.cut = true;
      if (Streams(call)) {
        SetStream(call, reply, StreamEvents(call, pieces, std::max<size_t>(1, pieces.size() / 2),
                                            false, usage));
      } else {
        std::string whole = SuccessBody(call, text, usage, false).dump();
        reply.chunked = true;
        reply.pieces = {whole.substr(0, whole.size() / 2)};
      }
      AddRateHeaders(call, step, reply);
      break;
    case K::kEndless:
      if (Streams(call)) {
        // A good start, then the same text event for ever: no terminator ever comes.
        // 1 KiB of text per event, so an answer cap is reached after ~1 MiB on the wire
        // even in a sanitizer build.
        std::string more;
        while (more.size() < 1024) more += "more ";
        std::vector<std::string> events = StreamEvents(call, {more}, 1, false, usage);
        // Written in 64 KiB batches: one small chunk per write would make the mock,
        // not the client under test, the bottleneck.
        while (reply.repeat.size() < 64 * 1024) reply.repeat += events.back();
        SetStream(call, reply, std::move(events));
      } else {
        std::string whole = SuccessBody(call, text, usage, false).dump();
        reply.chunked = true;
        reply.pieces = {whole.substr(0, whole.size() / 2)};
        reply.repeat = std::string(64 * 1024, ' ');
      }
      break;
    case K::kHugeLine:
      reply.chunked = true;
      reply.content_type = Streams(call) ? "text/event-stream" : "application/json";
      reply.pieces = {Streams(call) ? "data: {\"x\":\"" : "{\"x\":\""};
      reply.repeat = std::string(64 * 1024, 'a');
      reply.repeat_bytes = step.bytes;
      break;
    case K::kInbandError: {
      MockError err = BuildMockError(call, step.error.empty() ? DefaultInbandError(call.flavor)
                                                            : step.error, step);
      if (Streams(call)) {
        std::vector<std::string> events = StreamEvents(call, pieces, 1, false, usage);
        events.push_back(InbandEvent(call, err));
        SetStream(call, reply, std::move(events));
      } else {
        Json body = err.body;
        if (call.flavor == Flavor::kOpenRouter) {  // OpenRouter's 200 with an error object
          body = {{"id", "gen-mock-" + std::to_string(call.id)}, {"error", err.body["error"]}};
        }
        SetBody(reply, body);
      }
      break;
    }
    case K::kOk:
    case K::kEmpty:
    case K::kSlow:
    case K::kRemaining0:
      if (Streams(call)) {
        SetStream(call, reply, StreamEvents(call, pieces, pieces.size(), true, usage));
        if (step.kind == K::kSlow) reply.gap_ms = step.ms;
      } else {
        SetBody(reply, SuccessBody(call, text, usage, step.kind == K::kEmpty));
        if (step.kind == K::kSlow) reply.delay_ms = step.ms * static_cast<int>(pieces.size());
      }
      AddRateHeaders(call, step, reply);
      break;
  }
  for (const auto& [name, value] : step.headers) reply.headers[name] = value;
  return reply;
}

}  // namespace kpm::testing
