// What every adapter gets from ProviderBase: scrubbing before anything reads upstream
// text, size caps, per-key endpoints, default models and the openai-compatible model
// discovery. Run through the real adapters with a FakeHttpClient.

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "providers/caps.h"
#include "tests/unit/providers/provider_test_util.h"

namespace kpm::providers {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace)

// 42 characters, as SPEC §4's canary keys.
const std::string kCanary = "sk-canary-0123456789abcdefghijklmnopqrstuv";
// Puts the key at byte 259 of the upstream's text: a 300-byte cut made before the
// scrub would keep 41 of its 42 characters where no scrubber can recognise them.
const std::string kFiller(259, 'f');

/// No 8-character piece of `key` is in `text`.
void CheckNoFragment(const std::string& text, const std::string& key) {
  INFO("text: " << text);
  for (size_t i = 0; i + 8 <= key.size(); ++i) CHECK(text.find(key.substr(i, 8)) == std::string::npos);
}

ProviderConfig WithKeys(ProviderConfig c, const std::vector<std::string>& secrets) {
  for (const std::string& s : secrets) {
    keypool::KeySpec spec;
    spec.secret = s;
    c.keys.push_back(spec);
  }
  return c;
}

const std::vector<std::string> kOkStream = {
    "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"};

TEST_CASE("upstream text is scrubbed whole before it is cut: no piece of a key at byte 259 survives",
          "[unit][providers]") {
  Fixture f;
  auto p = f.Make(WithKeys(Config(ProviderType::kOpenAI, "https://api.openai.com/v1"), {kCanary}));
  Completion c;
  keypool::AttemptOutcome out;
  SECTION("an HTTP error body with an error object") {
    f.http.Script(Answer(401, R"({"error":{"message":")" + kFiller + kCanary +
                                  R"( is not valid","type":"invalid_request_error","code":"invalid_api_key"}})"));
    out = p->Complete(Key(kCanary), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kAuthError);
  }
  SECTION("an HTTP error body that is plain text") {
    f.http.Script(Answer(502, kFiller + kCanary + " upstream said no"));
    out = p->Complete(Key(kCanary), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kServerError);
  }
  SECTION("a JSON-escaped key, which only the whole body shows") {
    std::string escaped = kCanary;
    escaped.replace(3, 1, "\\u0063");  // the 'c' of "canary"
    f.http.Script(Answer(400, R"({"error":{"message":")" + kFiller + escaped + R"("}})"));
    out = p->Complete(Key(kCanary), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kBadRequest);
  }
  SECTION("an in-stream error chunk") {
    f.http.Script(Stream({"data: {\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\n",
                          "data: {\"error\":{\"code\":500,\"message\":\"" + kFiller + kCanary + " failed\"}}\n\n"}));
    out = p->Complete(Key(kCanary), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kServerError);
    CHECK(out.message.rfind("in-stream error", 0) == 0);
  }
  SECTION("a transport error that echoes a URL") {
    f.http.Script(Failure(TransportError::kNetwork, "could not reach https://x/" + kFiller + kCanary));
    out = p->Complete(Key(kCanary), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kNetworkError);
  }
  SECTION("a listing's error body") {
    f.http.Script(Answer(403, R"({"error":{"message":")" + kFiller + kCanary + R"("}})"));
    HealthInfo h;
    out = p->CheckKey(Key(kCanary), f.Ctx(), &h);
    CHECK(out.outcome == Outcome::kAuthError);
  }
  CHECK(out.message.find("[redacted]") != std::string::npos);
  CheckNoFragment(out.message, kCanary);
}

TEST_CASE("Anthropic and Gemini in-stream errors are scrubbed before they are cut", "[unit][providers]") {
  Fixture f;
  Completion c;
  SECTION("Anthropic event: error") {
    auto p = f.Make(WithKeys(Config(ProviderType::kAnthropic, "https://api.anthropic.com/v1"), {kCanary}));
    f.http.Script(Stream({"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                          "\"message\":\"" + kFiller + kCanary + "\"}}\n\n"}));
    auto out = p->Complete(Key(kCanary), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kServerError);
    CheckNoFragment(out.message, kCanary);
  }
  SECTION("Gemini {\"error\":...} chunk") {
    auto p = f.Make(WithKeys(Config(ProviderType::kGemini, "https://g/v1beta"), {kCanary}));
    f.http.Script(Stream({"data: {\"error\":{\"code\":503,\"message\":\"" + kFiller + kCanary +
                          "\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n"}));
    auto out = p->Complete(Key(kCanary), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kServerError);
    CheckNoFragment(out.message, kCanary);
  }
}

TEST_CASE("a key echoed in the answer text is scrubbed before the adapter reads it", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(WithKeys(Config(ProviderType::kOpenAI, "https://api.openai.com/v1"), {kCanary}));
  f.http.Script(Stream({"data: {\"choices\":[{\"delta\":{\"content\":\"your key is " + kCanary +
                        "\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"}));
  Completion c;
  REQUIRE(p->Complete(Key(kCanary), Hello(), f.Ctx(), &c).outcome == Outcome::kOk);
  CHECK(c.text == "your key is [redacted]");
}

TEST_CASE("each key's requests go to its own baseUrl, else the provider's", "[unit][providers]") {
  Fixture f;
  keypool::KeyLease own = Key("k1", "https://reseller.example/v1");
  keypool::KeyLease shared = Key("k2");
  HealthInfo h;
  std::vector<ModelInfo> models;
  Completion c;
  SECTION("OpenAI: completion, CheckKey, ListModels") {
    auto p = f.Make(Config(ProviderType::kOpenAI, "https://api.openai.com/v1"));
    f.http.Script(Stream(kOkStream));
    f.http.Script(Stream(kOkStream));
    f.http.Script(Answer(200, R"({"data":[]})"));
    f.http.Script(Answer(200, R"({"data":[]})"));
    f.http.Script(Answer(200, R"({"data":[]})"));
    f.http.Script(Answer(200, R"({"data":[]})"));
    CHECK(p->Complete(own, Hello(), f.Ctx(), &c).outcome == Outcome::kOk);
    CHECK(p->Complete(shared, Hello(), f.Ctx(), &c).outcome == Outcome::kOk);
    CHECK(p->CheckKey(own, f.Ctx(), &h).outcome == Outcome::kOk);
    CHECK(p->CheckKey(shared, f.Ctx(), &h).outcome == Outcome::kOk);
    CHECK(p->ListModels(own, f.Ctx(), &models).outcome == Outcome::kOk);
    CHECK(p->ListModels(shared, f.Ctx(), &models).outcome == Outcome::kOk);
    REQUIRE(f.http.requests.size() == 6);
    CHECK(f.http.requests[0].url == "https://reseller.example/v1/chat/completions");
    CHECK(f.http.requests[1].url == "https://api.openai.com/v1/chat/completions");
    CHECK(f.http.requests[2].url == "https://reseller.example/v1/models");
    CHECK(f.http.requests[3].url == "https://api.openai.com/v1/models");
    CHECK(f.http.requests[4].url == "https://reseller.example/v1/models");
    CHECK(f.http.requests[5].url == "https://api.openai.com/v1/models");
    CHECK(f.http.Header(0, "Authorization") == "Bearer k1");
    CHECK(f.http.Header(1, "Authorization") == "Bearer k2");
  }
  SECTION("OpenRouter CheckKey") {
    auto p = f.Make(Config(ProviderType::kOpenRouter, "https://openrouter.ai/api/v1"));
    f.http.Script(Answer(200, R"({"data":{"limit_remaining":null}})"));
    CHECK(p->CheckKey(own, f.Ctx(), &h).outcome == Outcome::kOk);
    CHECK(f.http.requests.at(0).url == "https://reseller.example/v1/key");
  }
  SECTION("Anthropic") {
    auto p = f.Make(Config(ProviderType::kAnthropic, "https://api.anthropic.com/v1"));
    f.http.Script(Answer(500, "{}"));
    f.http.Script(Answer(200, R"({"data":[]})"));
    f.http.Script(Answer(200, R"({"data":[]})"));
    (void)p->Complete(own, Hello(), f.Ctx(), &c);
    (void)p->CheckKey(own, f.Ctx(), &h);
    (void)p->ListModels(shared, f.Ctx(), &models);
    CHECK(f.http.requests.at(0).url == "https://reseller.example/v1/messages");
    CHECK(f.http.requests.at(1).url == "https://reseller.example/v1/models?limit=1");
    CHECK(f.http.requests.at(2).url == "https://api.anthropic.com/v1/models?limit=1000");
  }
  SECTION("Gemini") {
    auto p = f.Make(Config(ProviderType::kGemini, "https://generativelanguage.googleapis.com/v1beta"));
    f.http.Script(Answer(500, "{}"));
    f.http.Script(Answer(200, R"({"models":[]})"));
    f.http.Script(Answer(200, R"({"models":[]})"));
    (void)p->Complete(own, Hello(), f.Ctx(), &c);
    (void)p->CheckKey(own, f.Ctx(), &h);
    (void)p->ListModels(shared, f.Ctx(), &models);
    CHECK(f.http.requests.at(0).url == "https://reseller.example/v1/models/default-model:streamGenerateContent?alt=sse");
    CHECK(f.http.requests.at(1).url == "https://reseller.example/v1/models?pageSize=1");
    CHECK(f.http.requests.at(2).url == "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1000");
  }
}

TEST_CASE("with no model in the call or the config, each type's default model is sent", "[unit][providers]") {
  Fixture f;
  Completion c;
  SECTION("openrouter") {
    ProviderConfig cfg = Config(ProviderType::kOpenRouter, "https://openrouter.ai/api/v1");
    cfg.model.clear();
    auto p = f.Make(cfg);
    f.http.Script(Stream(kOkStream));
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kOk);
    CHECK(json::parse(f.http.requests.at(0).body)["model"] == "openrouter/auto");
  }
  SECTION("anthropic") {
    ProviderConfig cfg = Config(ProviderType::kAnthropic, "https://api.anthropic.com/v1");
    cfg.model.clear();
    auto p = f.Make(cfg);
    f.http.Script(Answer(500, "{}"));
    (void)p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(json::parse(f.http.requests.at(0).body)["model"] == "claude-sonnet-4-5");
  }
  SECTION("the call's model comes first, then the config's") {
    ProviderConfig cfg = Config(ProviderType::kOpenAI, "https://api.openai.com/v1");
    auto p = f.Make(cfg);
    f.http.Script(Stream(kOkStream));
    f.http.Script(Stream(kOkStream));
    CompletionRequest r = Hello();
    r.model = "gpt-called";
    (void)p->Complete(Key("k"), r, f.Ctx(), &c);
    (void)p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(json::parse(f.http.requests.at(0).body)["model"] == "gpt-called");
    CHECK(json::parse(f.http.requests.at(1).body)["model"] == "default-model");
  }
}

TEST_CASE("openai-compatible with no model asks its server once per endpoint", "[unit][providers]") {
  Fixture f;
  ProviderConfig cfg = Config(ProviderType::kOpenAICompatible, "http://127.0.0.1:11434/v1");
  cfg.name = "local";
  cfg.model.clear();
  auto p = f.Make(cfg);
  Completion c;
  SECTION("one model listed: it is used, and the second call does not ask again") {
    f.http.Script(Answer(200, R"({"object":"list","data":[{"id":"llama-3-8b","object":"model"}]})"));
    f.http.Script(Stream(kOkStream));
    f.http.Script(Stream(kOkStream));
    CHECK(p->Complete(Key("sk-local"), Hello(), f.Ctx(), &c).outcome == Outcome::kOk);
    CHECK(p->Complete(Key("sk-local"), Hello(), f.Ctx(), &c).outcome == Outcome::kOk);
    REQUIRE(f.http.requests.size() == 3);
    CHECK(f.http.requests[0].method == "GET");
    CHECK(f.http.requests[0].url == "http://127.0.0.1:11434/v1/models");
    CHECK(f.http.Header(0, "Authorization") == "Bearer sk-local");
    CHECK(f.http.requests[1].url == "http://127.0.0.1:11434/v1/chat/completions");
    CHECK(json::parse(f.http.requests[1].body)["model"] == "llama-3-8b");
    CHECK(json::parse(f.http.requests[2].body)["model"] == "llama-3-8b");
    SECTION("a key with its own endpoint asks that endpoint") {
      f.http.Script(Answer(200, R"({"data":[{"id":"qwen2-7b"}]})"));
      f.http.Script(Stream(kOkStream));
      CHECK(p->Complete(Key("k2", "http://10.0.0.2:8000/v1"), Hello(), f.Ctx(), &c).outcome == Outcome::kOk);
      REQUIRE(f.http.requests.size() == 5);
      CHECK(f.http.requests[3].url == "http://10.0.0.2:8000/v1/models");
      CHECK(json::parse(f.http.requests[4].body)["model"] == "qwen2-7b");
    }
  }
  SECTION("several models listed: a bad request naming them, asked only once") {
    f.http.Script(Answer(200, R"({"data":[{"id":"llama-3-8b"},{"id":"qwen2-7b"}]})"));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kBadRequest);
    CHECK(out.message ==
          "provider local: no model given and the server lists 2 models: llama-3-8b, qwen2-7b; name one with \"model\"");
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kBadRequest);
    CHECK(f.http.requests.size() == 1);
  }
  SECTION("a long list is named in part") {
    std::string data;
    for (int i = 0; i < 12; ++i) data += std::string(i ? "," : "") + "{\"id\":\"m" + std::to_string(i) + "\"}";
    f.http.Script(Answer(200, "{\"data\":[" + data + "]}"));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kBadRequest);
    CHECK(out.message.find("lists 12 models: m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, … (2 more); name one") !=
          std::string::npos);
  }
  SECTION("no models listed") {
    f.http.Script(Answer(200, R"({"data":[]})"));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kBadRequest);
    CHECK(out.message == "provider local: no model given and the server lists no models; name one with \"model\"");
  }
  SECTION("the listing fails: its outcome stands, and the next call asks again") {
    f.http.Script(Answer(401, R"({"error":{"message":"bad key","code":"invalid_api_key"}})"));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kAuthError);
    CHECK(out.status == 401);
    CHECK(out.message.find("asking the server for its models failed: 401") != std::string::npos);
    f.http.Script(Failure(TransportError::kNetwork, "Connection refused"));
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kNetworkError);
    CHECK(f.http.requests.size() == 2);
  }
}

/// Answers by URL, for calls that run at once: GET .../models lists one model, a POST
/// streams an answer. Counts the GETs.
class RoutingHttpClient : public HttpClient {
 public:
  HttpResult Send(const HttpRequest& request, const BodyCallback& on_body) override {
    HttpResult r;
    r.status = 200;
    r.body_complete = true;
    if (request.method == "GET") {
      gets++;
      r.body = R"({"data":[{"id":"only-model"}]})";
      return r;
    }
    if (json::parse(request.body)["model"] != "only-model") r.status = 400;
    for (const std::string& chunk : kOkStream) on_body(chunk);
    return r;
  }
  std::atomic<int> gets{0};
};

TEST_CASE("the discovered model is shared safely by concurrent calls", "[unit][providers]") {
  RoutingHttpClient http;
  FakeClock clock;
  ProviderConfig cfg = Config(ProviderType::kOpenAICompatible, "http://127.0.0.1:11434/v1");
  cfg.model.clear();
  auto p = MakeProvider(cfg, http, clock);
  constexpr int kThreads = 8;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        AttemptContext ctx;
        Completion c;
        if (p->Complete(Key("k"), Hello(), ctx, &c).outcome == Outcome::kOk) ok++;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == kThreads * 5);
  CHECK(http.gets >= 1);
  CHECK(http.gets <= kThreads);  // at most the calls that started before the first answer was stored
}

TEST_CASE("the answer-text cap follows max_tokens within 1 MiB and 16 MiB", "[unit][providers]") {
  CHECK(AnswerCapBytes(std::nullopt) == 16 * kMiB);
  CHECK(AnswerCapBytes(0) == 16 * kMiB);
  CHECK(AnswerCapBytes(-5) == 16 * kMiB);
  CHECK(AnswerCapBytes(10) == 1 * kMiB);
  CHECK(AnswerCapBytes(100000) == 6'400'000);
  CHECK(AnswerCapBytes(2'000'000'000) == 16 * kMiB);
}

TEST_CASE("a stream past a cap ends the attempt as a server_error naming the cap", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kOpenAI, "https://api.openai.com/v1"));
  Completion c;
  keypool::AttemptOutcome out;
  std::string expected;
  SECTION("a line over 1 MiB") {
    f.http.Script(Stream({"data: {\"choices\":[{\"delta\":{\"content\":\"" + std::string(kMiB, 'x')}));
    expected = "200 with a stream line over 1 MiB";
  }
  SECTION("an event's data over 4 MiB") {
    std::string lines;
    for (int i = 0; i < 5; ++i) lines += "data: " + std::string(kMiB - 100, 'x') + "\n";
    f.http.Script(Stream({lines + "\n"}));
    expected = "200 with an event's data over 4 MiB";
  }
  SECTION("an answer over its cap (max_tokens 10: 1 MiB)") {
    std::string delta =
        "data: {\"choices\":[{\"delta\":{\"content\":\"" + std::string(64 * kKiB, 'x') + "\"}}]}\n\n";
    FakeAnswer a = Stream(std::vector<std::string>(20, delta));
    a.chunks.push_back("data: [DONE]\n\n");
    f.http.Script(a);
    expected = "200 with an answer over 1 MiB";
  }
  CompletionRequest r = Hello();
  r.max_tokens = 10;
  out = p->Complete(Key("k"), r, f.Ctx(), &c);
  CHECK(out.outcome == Outcome::kServerError);
  CHECK(out.status == 200);
  CHECK(out.message == expected);
  CHECK(c.text.empty());
}

TEST_CASE("an answer under its cap is whole", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kOpenAI, "https://api.openai.com/v1"));
  std::string delta = "data: {\"choices\":[{\"delta\":{\"content\":\"" + std::string(64 * kKiB, 'x') + "\"}}]}\n\n";
  FakeAnswer a = Stream(std::vector<std::string>(20, delta));
  a.chunks.push_back("data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
  f.http.Script(a);
  CompletionRequest r = Hello();
  r.max_tokens = 100000;  // 6.4 MB
  Completion c;
  CHECK(p->Complete(Key("k"), r, f.Ctx(), &c).outcome == Outcome::kOk);
  CHECK(c.text.size() == 20 * 64 * kKiB);
}

TEST_CASE("a body read whole is capped and a cut one is reported as cut, not malformed", "[unit][providers]") {
  Fixture f;
  ProviderConfig cfg = Config(ProviderType::kOpenAI, "https://api.openai.com/v1");
  cfg.stream = false;
  auto p = f.Make(cfg);
  Completion c;
  SECTION("a stream:false completion over its cap (derived from max_tokens)") {
    f.http.Script(Answer(200, "{\"choices\":[{\"message\":{\"content\":\"" + std::string(17 * kMiB, 'x')));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(f.http.requests.at(0).max_body_bytes == CompletionBodyCapBytes(Hello().max_tokens));
    CHECK(CompletionBodyCapBytes(std::nullopt) == 16 * kMiB);
    CHECK(CompletionBodyCapBytes(100) == 3 * kMiB);
    CHECK(out.outcome == Outcome::kServerError);
    CHECK(out.message == "200 with a body over " + CapText(CompletionBodyCapBytes(Hello().max_tokens)));
  }
  SECTION("a GET /models listing over 32 MiB") {
    std::vector<ModelInfo> models;
    f.http.Script(Answer(200, "{\"data\":[" + std::string(33 * kMiB, ' ')));
    auto out = p->ListModels(Key("k"), f.Ctx(), &models);
    CHECK(out.outcome == Outcome::kServerError);
    CHECK(out.message == "200 with a body over 32 MiB");
  }
  SECTION("a listing of 20 MiB is read whole") {
    std::vector<ModelInfo> models;
    f.http.Script(Answer(200, "{\"data\":[{\"id\":\"m\"}]" + std::string(20 * kMiB, ' ') + "}"));
    CHECK(p->ListModels(Key("k"), f.Ctx(), &models).outcome == Outcome::kOk);
    CHECK(models.size() == 1);
  }
  SECTION("a 2xx body cut by the connection") {
    FakeAnswer a = Answer(200, R"({"choices":[{"message":{"content":"Hel)");
    a.cut = true;
    f.http.Script(a);
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kServerError);
    CHECK(out.message == "200 but the answer was cut before the end of the body");
  }
  SECTION("an error body over 1 MiB is cut there, and its status still decides") {
    f.http.Script(Answer(429, std::string(3 * kMiB, 'x'), {{"retry-after", "7"}}));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kRateLimited);
    CHECK(*out.limits.retry_at_ms == f.clock.NowMs() + 7000);
  }
}

TEST_CASE("stream:false: a body still arriving when the timeout passes is a timeout", "[unit][providers]") {
  Fixture f;
  for (ProviderType type : {ProviderType::kOpenAI, ProviderType::kAnthropic, ProviderType::kGemini}) {
    ProviderConfig cfg = Config(type, "https://x/v1");
    cfg.stream = false;
    auto p = f.Make(cfg);
    INFO(ProviderTypeName(type));
    FakeAnswer a = Answer(200, R"({"choices":[{"message":{"content":"Hel)");
    a.error = TransportError::kTotalTimeout;
    a.error_message = "request took longer than 60000 ms";
    f.http.Script(a);
    Completion c;
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kTimeout);
    CHECK(out.message == "timeout: request took longer than 60000 ms");
  }
}

}  // namespace
}  // namespace kpm::providers
