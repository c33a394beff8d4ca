#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/unit/providers/provider_test_util.h"

namespace kpm::providers {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace)

// A stream modelled on OpenAI's documented chunk shape, split at awkward places.
const std::vector<std::string> kOpenAIStream = {
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-x-2026\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-x-2026\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\"Hel",
    "lo\"},\"finish_reason\":null}],\"usage\":null}\n\ndata: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":"
    "{\"content\":\" there\"},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n"
    "data: [DO",
    "NE]\n\n"};

TEST_CASE("OpenAI: request shape and a streamed answer", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kOpenAI, "https://api.openai.com/v1"));
  f.http.Script(Stream(kOpenAIStream, {{"x-ratelimit-remaining-requests", "99"}, {"x-ratelimit-reset-requests", "1s"}}));
  std::vector<size_t> progress;
  Completion c;
  auto out = p->Complete(Key("sk-test-123"), Hello(), f.Ctx(&progress), &c);

  CHECK(OutcomeName(out.outcome) == "ok");
  CHECK(c.text == "Hello there");
  CHECK(c.finish_reason == "stop");
  CHECK(c.model == "gpt-x-2026");
  CHECK(c.input_tokens == 9);
  CHECK(c.output_tokens == 2);
  CHECK(progress == std::vector<size_t>{5, 11});
  CHECK(*out.limits.requests_remaining == 99);
  CHECK(*out.limits.requests_reset_at_ms == f.clock.NowMs() + 1000);

  REQUIRE(f.http.requests.size() == 1);
  const HttpRequest& req = f.http.requests[0];
  CHECK(req.method == "POST");
  CHECK(req.url == "https://api.openai.com/v1/chat/completions");
  CHECK(f.http.Header(0, "Authorization") == "Bearer sk-test-123");
  CHECK(f.http.Header(0, "Content-Type") == "application/json");
  CHECK(f.http.Header(0, "X-OpenRouter-Title") == "<absent>");
  json body = json::parse(req.body);
  CHECK(body["model"] == "default-model");
  CHECK(body["messages"] == json::parse(R"([{"role":"system","content":"Be brief."},{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"again"}])"));
  CHECK(body["max_completion_tokens"] == 64);
  CHECK_FALSE(body.contains("max_tokens"));
  CHECK(body["temperature"] == 0.2);
  CHECK(body["stream"] == true);
  CHECK(body["stream_options"]["include_usage"] == true);
}

TEST_CASE("openai-compatible: no key means no auth header; max_tokens; extra headers", "[unit][providers]") {
  Fixture f;
  ProviderConfig cfg = Config(ProviderType::kOpenAICompatible, "http://127.0.0.1:11434/v1");
  cfg.headers = {{"X-Custom", "yes"}};
  auto p = f.Make(cfg);
  f.http.Script(Stream(kOpenAIStream));
  CompletionRequest r = Hello();
  r.model = "llama3";
  Completion c;
  auto out = p->Complete(Key(""), r, f.Ctx(), &c);
  CHECK(out.outcome == Outcome::kOk);
  CHECK(f.http.requests[0].url == "http://127.0.0.1:11434/v1/chat/completions");
  CHECK(f.http.Header(0, "Authorization") == "<absent>");
  CHECK(f.http.Header(0, "X-Custom") == "yes");
  json body = json::parse(f.http.requests[0].body);
  CHECK(body["model"] == "llama3");
  CHECK(body["max_tokens"] == 64);
  CHECK_FALSE(body.contains("max_completion_tokens"));
}

TEST_CASE("OpenRouter: attribution header, keep-alive comments, in-band error chunk", "[unit][providers]") {
  Fixture f;
  ProviderConfig cfg = Config(ProviderType::kOpenRouter, "https://openrouter.ai/api/v1");
  auto p = f.Make(cfg);
  Completion c;

  SECTION("a stream with keep-alive comments succeeds") {
    f.http.Script(Stream({": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\n",
                          "data: {\"id\":\"gen-1\",\"provider\":\"X\",\"model\":\"a/b\",\"choices\":[{\"index\":0,"
                          "\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,"
                          "\"completion_tokens\":1}}\n\ndata: [DONE]\n\n"}));
    auto out = p->Complete(Key("sk-or-v1-abc"), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kOk);
    CHECK(c.text == "ok");
    CHECK(c.input_tokens == 3);
    CHECK(f.http.Header(0, "X-OpenRouter-Title") == "keypool-mcp");
    CHECK(f.http.Header(0, "Authorization") == "Bearer sk-or-v1-abc");
    json body = json::parse(f.http.requests[0].body);
    CHECK(body["max_tokens"] == 64);
    CHECK_FALSE(body.contains("stream_options"));
  }
  SECTION("config.headers replace the attribution header") {
    cfg.headers = {{"x-openrouter-title", "my-app"}, {"HTTP-Referer", "https://example.org"}};
    p = f.Make(cfg);
    f.http.Script(Stream(kOpenAIStream));
    (void)p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(f.http.Header(0, "X-OpenRouter-Title") == "my-app");
    CHECK(f.http.Header(0, "HTTP-Referer") == "https://example.org");
    int titles = 0;
    for (const auto& h : f.http.requests[0].headers) titles += (h.first == "X-OpenRouter-Title" || h.first == "x-openrouter-title");
    CHECK(titles == 1);
  }
  SECTION("an error chunk after the first token takes the error's class") {
    f.http.Script(Stream({"data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n",
                          "data: {\"id\":\"gen-1\",\"object\":\"chat.completion.chunk\",\"error\":{\"code\":429,"
                          "\"message\":\"Provider rate limited\",\"metadata\":{\"error_type\":\"rate_limit_exceeded\"}},"
                          "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}]}\n\n"}));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(OutcomeName(out.outcome) == "rate_limited");
    CHECK(out.status == 200);
    CHECK(c.text.empty());  // nothing partial is handed out
  }
  SECTION("a 200 with empty content is a failed attempt") {
    f.http.Script(Stream({"data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},"
                          "\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"}));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(OutcomeName(out.outcome) == "server_error");
  }
  SECTION("a non-streaming 200 with an error object") {
    cfg.stream = false;
    p = f.Make(cfg);
    f.http.Script(Answer(200, R"({"error":{"code":402,"message":"Insufficient credits"}})"));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(OutcomeName(out.outcome) == "quota_exhausted");
  }
}

TEST_CASE("OpenAI: broken streams are never ok", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kOpenAI, "https://api.openai.com/v1"));
  Completion c;
  SECTION("cut before [DONE]") {
    f.http.Script(Stream({kOpenAIStream[0], kOpenAIStream[1], kOpenAIStream[2]}));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(OutcomeName(out.outcome) == "server_error");
    CHECK(out.message.find("[DONE]") != std::string::npos);
  }
  SECTION("cut by the transport mid-body") {
    FakeAnswer a = Stream({kOpenAIStream[0]});
    a.error = TransportError::kNone;
    f.http.Script(a);
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(OutcomeName(out.outcome) == "server_error");
  }
  SECTION("idle timeout mid-stream") {
    FakeAnswer a = Stream({kOpenAIStream[0]});
    a.error = TransportError::kIdleTimeout;
    f.http.Script(a);
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(OutcomeName(out.outcome) == "timeout");
  }
  SECTION("a server that idles after [DONE] still gave a whole answer") {
    FakeAnswer a = Stream(kOpenAIStream);
    a.error = TransportError::kIdleTimeout;
    f.http.Script(a);
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kOk);
    CHECK(c.text == "Hello there");
  }
  SECTION("a malformed chunk") {
    f.http.Script(Stream({"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}\n\ndata: [DONE]\n\n"}));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(OutcomeName(out.outcome) == "server_error");
  }
  SECTION("an OpenAI error chunk") {
    f.http.Script(Stream({"data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n"}));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(OutcomeName(out.outcome) == "server_error");
    CHECK(out.message.find("in-stream error") == 0);
  }
}

TEST_CASE("OpenAI: non-streaming mode", "[unit][providers]") {
  Fixture f;
  ProviderConfig cfg = Config(ProviderType::kOpenAI, "https://api.openai.com/v1");
  cfg.stream = false;
  auto p = f.Make(cfg);
  Completion c;
  SECTION("whole body") {
    f.http.Script(Answer(200, R"({"id":"c","object":"chat.completion","model":"gpt-x","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})"));
    std::vector<size_t> progress;
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(&progress), &c);
    CHECK(out.outcome == Outcome::kOk);
    CHECK(c.text == "Hi!");
    CHECK(c.output_tokens == 2);
    CHECK(progress == std::vector<size_t>{3});
    json body = json::parse(f.http.requests[0].body);
    CHECK_FALSE(body.contains("stream"));
    CHECK_FALSE(body.contains("stream_options"));
  }
  SECTION("malformed JSON 200") {
    f.http.Script(Answer(200, R"({"choices":[{"message":)"));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(OutcomeName(out.outcome) == "server_error");
  }
  SECTION("content_filter is returned as it is") {
    f.http.Script(Answer(200, R"({"choices":[{"index":0,"message":{"role":"assistant","content":null},"finish_reason":"content_filter"}]})"));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kOk);
    CHECK(c.finish_reason == "content_filter");
  }
}

TEST_CASE("OpenAI: HTTP errors, transport failures, deadline and missing model", "[unit][providers]") {
  Fixture f;
  ProviderConfig cfg = Config(ProviderType::kOpenAI, "https://api.openai.com/v1");
  cfg.timeout_ms = 60000;
  cfg.first_byte_timeout_ms = 30000;
  cfg.idle_timeout_ms = 20000;
  auto p = f.Make(cfg);
  Completion c;
  SECTION("429 with Retry-After") {
    f.http.Script(Answer(429, R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})",
                         {{"retry-after", "20"}}));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kRateLimited);
    CHECK(out.status == 429);
    CHECK(*out.limits.retry_at_ms == f.clock.NowMs() + 20000);
  }
  SECTION("429 insufficient_quota") {
    f.http.Script(Answer(429, R"({"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}})"));
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kQuotaExhausted);
  }
  SECTION("401") {
    f.http.Script(Answer(401, R"({"error":{"message":"Incorrect API key","type":"invalid_request_error","code":"invalid_api_key"}})"));
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kAuthError);
  }
  SECTION("connection refused") {
    f.http.Script(Failure(TransportError::kNetwork, "Connection refused"));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kNetworkError);
    CHECK(out.status == 0);
  }
  SECTION("first-byte timeout") {
    f.http.Script(Failure(TransportError::kFirstByteTimeout, "no headers"));
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kTimeout);
  }
  SECTION("cancelled") {
    CancelToken cancel;
    cancel.Cancel();
    AttemptContext ctx = f.Ctx();
    ctx.cancel = &cancel;
    f.http.Script(Stream(kOpenAIStream));
    CHECK(p->Complete(Key("k"), Hello(), ctx, &c).outcome == Outcome::kCancelled);
  }
  SECTION("timeouts are bounded by the deadline") {
    f.http.Script(Stream(kOpenAIStream));
    AttemptContext ctx = f.Ctx();
    ctx.deadline_ms = f.clock.NowMs() + 15000;
    (void)p->Complete(Key("k"), Hello(), ctx, &c);
    const HttpRequest& req = f.http.requests[0];
    CHECK(req.total_timeout_ms == 15000);
    CHECK(req.first_byte_timeout_ms == 15000);
    CHECK(req.idle_timeout_ms == 15000);
  }
  SECTION("config timeouts when the deadline is far") {
    f.http.Script(Stream(kOpenAIStream));
    (void)p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    const HttpRequest& req = f.http.requests[0];
    CHECK(req.total_timeout_ms == 60000);
    CHECK(req.first_byte_timeout_ms == 30000);
    CHECK(req.idle_timeout_ms == 20000);
  }
  SECTION("a passed deadline sends nothing") {
    AttemptContext ctx = f.Ctx();
    ctx.deadline_ms = f.clock.NowMs() - 1;
    CHECK(p->Complete(Key("k"), Hello(), ctx, &c).outcome == Outcome::kTimeout);
    CHECK(f.http.requests.empty());
  }
  SECTION("no model in the call or the config: the type's default") {
    cfg.model.clear();
    p = f.Make(cfg);
    f.http.Script(Stream(kOpenAIStream));
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kOk);
    CHECK(json::parse(f.http.requests.at(0).body)["model"] == "gpt-4o-mini");
  }
}

TEST_CASE("OpenAI and OpenRouter: CheckKey and ListModels", "[unit][providers]") {
  Fixture f;
  SECTION("OpenAI checks with GET /models") {
    auto p = f.Make(Config(ProviderType::kOpenAI, "https://api.openai.com/v1"));
    f.http.Script(Answer(200, R"({"object":"list","data":[{"id":"gpt-x","object":"model","created":1,"owned_by":"openai"}]})"));
    HealthInfo h;
    CHECK(p->CheckKey(Key("sk-1"), f.Ctx(), &h).outcome == Outcome::kOk);
    CHECK(f.http.requests[0].method == "GET");
    CHECK(f.http.requests[0].url == "https://api.openai.com/v1/models");
    CHECK(f.http.Header(0, "Authorization") == "Bearer sk-1");
    CHECK_FALSE(h.credit_known_positive);
    f.http.Script(Answer(401, R"({"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}})"));
    CHECK(p->CheckKey(Key("sk-1"), f.Ctx(), &h).outcome == Outcome::kAuthError);
  }
  SECTION("OpenRouter checks with GET /key and reads limit_remaining") {
    auto p = f.Make(Config(ProviderType::kOpenRouter, "https://openrouter.ai/api/v1"));
    HealthInfo h;
    f.http.Script(Answer(200, R"({"data":{"label":"k","limit":null,"limit_remaining":null,"usage":1.5,"is_free_tier":false}})"));
    CHECK(p->CheckKey(Key("sk-or-v1-x"), f.Ctx(), &h).outcome == Outcome::kOk);
    CHECK(f.http.requests[0].url == "https://openrouter.ai/api/v1/key");
    CHECK(h.credit_known_positive);
    CHECK_FALSE(h.credit_remaining);

    h = HealthInfo{};
    f.http.Script(Answer(200, R"({"data":{"label":"k","limit":10,"limit_remaining":2.5}})"));
    CHECK(p->CheckKey(Key("k"), f.Ctx(), &h).outcome == Outcome::kOk);
    CHECK(h.credit_known_positive);
    CHECK(*h.credit_remaining == 2.5);

    h = HealthInfo{};
    f.http.Script(Answer(200, R"({"data":{"label":"k","limit":10,"limit_remaining":0}})"));
    CHECK(p->CheckKey(Key("k"), f.Ctx(), &h).outcome == Outcome::kOk);
    CHECK_FALSE(h.credit_known_positive);

    f.http.Script(Answer(401, R"({"error":{"code":401,"message":"User not found."}})"));
    CHECK(p->CheckKey(Key("k"), f.Ctx(), &h).outcome == Outcome::kAuthError);
  }
  SECTION("ListModels maps data[].id") {
    auto p = f.Make(Config(ProviderType::kOpenRouter, "https://openrouter.ai/api/v1"));
    f.http.Script(Answer(200, R"({"data":[{"id":"openai/gpt-4o","name":"OpenAI: GPT-4o"},{"id":"meta/llama:free","name":"Llama"}]})"));
    std::vector<ModelInfo> models;
    CHECK(p->ListModels(Key("k"), f.Ctx(), &models).outcome == Outcome::kOk);
    REQUIRE(models.size() == 2);
    CHECK(models[0].id == "openai/gpt-4o");
    CHECK(models[0].name == "OpenAI: GPT-4o");
    CHECK(f.http.requests[0].url == "https://openrouter.ai/api/v1/models");
    f.http.Script(Answer(200, "not json"));
    CHECK(p->ListModels(Key("k"), f.Ctx(), &models).outcome == Outcome::kServerError);
  }
}

TEST_CASE("OpenAI: chunks and bodies of surprising shapes never throw and are never ok", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kOpenAI, "https://api.openai.com/v1"));
  Completion c;
  const char* kChunks[] = {
      R"({"choices":["text"]})",
      R"({"choices":[{"delta":7}]})",
      R"({"choices":[{"delta":{"content":["a"]}}]})",
      R"({"choices":{"0":{"delta":{"content":"a"}}}})",
      R"({"choices":[null]})",
      R"({"model":12,"choices":[{"delta":{"content":null},"finish_reason":3}]})",
      R"([1,2,3])",
      R"("just a string")",
  };
  for (const char* chunk : kChunks) {
    INFO(chunk);
    f.http.Script(Stream({std::string("data: ") + chunk + "\n\ndata: [DONE]\n\n"}));
    keypool::AttemptOutcome out;
    CHECK_NOTHROW(out = p->Complete(Key("k"), Hello(), f.Ctx(), &c));
    CHECK(out.outcome == Outcome::kServerError);
  }
}

TEST_CASE("OpenAI: token counts too big for an int64 read as 0, not as garbage", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kOpenAI, "https://api.openai.com/v1"));
  f.http.Script(Stream({"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}],"
                        "\"usage\":{\"prompt_tokens\":18446744073709551615,\"completion_tokens\":1e300}}\n\n"
                        "data: [DONE]\n\n"}));
  Completion c;
  keypool::AttemptOutcome out;
  CHECK_NOTHROW(out = p->Complete(Key("k"), Hello(), f.Ctx(), &c));
  CHECK(out.outcome == Outcome::kOk);
  CHECK(c.input_tokens == 0);
  CHECK(c.output_tokens == 0);
}

TEST_CASE("OpenRouter: a /key answer of the wrong shape is malformed, not a crash", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kOpenRouter, "https://openrouter.ai/api/v1"));
  HealthInfo h;
  for (const char* body : {R"({"data":"x"})", R"({"data":[1]})", R"({"nodata":1})"}) {
    INFO(body);
    f.http.Script(Answer(200, body));
    keypool::AttemptOutcome out;
    CHECK_NOTHROW(out = p->CheckKey(Key("k"), f.Ctx(), &h));
    CHECK(out.outcome == Outcome::kServerError);
  }
  f.http.Script(Answer(200, R"({"data":{"limit_remaining":"lots"}})"));
  h = HealthInfo{};
  CHECK(p->CheckKey(Key("k"), f.Ctx(), &h).outcome == Outcome::kOk);
  CHECK_FALSE(h.credit_known_positive);  // a string says nothing about the credit
}

}  // namespace
}  // namespace kpm::providers
