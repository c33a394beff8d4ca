#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/unit/providers/provider_test_util.h"

namespace kpm::providers {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace)

// Modelled on the documented Messages streaming event sequence, with CRLF here and there.
const std::vector<std::string> kStream = {
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
    "\"role\":\"assistant\",\"model\":\"claude-x-1\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":12,"
    "\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
    "\"text\",\"text\":\"\"}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
    "\"text_delta\",\"text\":\"Hi\"}}\r\n\r\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\","
    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" you\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":4}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"};

TEST_CASE("Anthropic: request shape and a streamed answer", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kAnthropic, "https://api.anthropic.com/v1"));
  f.http.Script(Stream(kStream, {{"anthropic-ratelimit-requests-remaining", "49"}}));
  CompletionRequest r = Hello();
  r.messages.insert(r.messages.begin(), ChatMessage{"system", "And kind."});
  std::vector<size_t> progress;
  Completion c;
  auto out = p->Complete(Key("sk-ant-api03-secret"), r, f.Ctx(&progress), &c);

  CHECK(OutcomeName(out.outcome) == "ok");
  CHECK(c.text == "Hi you");
  CHECK(c.finish_reason == "end_turn");
  CHECK(c.model == "claude-x-1");
  CHECK(c.input_tokens == 12);
  CHECK(c.output_tokens == 4);
  CHECK(progress == std::vector<size_t>{2, 6});
  CHECK(*out.limits.requests_remaining == 49);

  const HttpRequest& req = f.http.requests.at(0);
  CHECK(req.url == "https://api.anthropic.com/v1/messages");
  CHECK(f.http.Header(0, "x-api-key") == "sk-ant-api03-secret");
  CHECK(f.http.Header(0, "anthropic-version") == "2023-06-01");
  CHECK(f.http.Header(0, "Authorization") == "<absent>");
  json body = json::parse(req.body);
  CHECK(body["model"] == "default-model");
  CHECK(body["system"] == "Be brief.\n\nAnd kind.");
  CHECK(body["max_tokens"] == 64);
  CHECK(body["stream"] == true);
  CHECK(body["messages"] == json::parse(R"([{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"again"}])"));
}

TEST_CASE("Anthropic: max_tokens defaults to 4096, keyless sends no x-api-key", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kAnthropic, "http://127.0.0.1:9/v1"));
  f.http.Script(Stream(kStream));
  CompletionRequest r;
  r.messages = {{"user", "hi"}};
  Completion c;
  CHECK(p->Complete(Key(""), r, f.Ctx(), &c).outcome == Outcome::kOk);
  json body = json::parse(f.http.requests[0].body);
  CHECK(body["max_tokens"] == 4096);
  CHECK_FALSE(body.contains("system"));
  CHECK_FALSE(body.contains("temperature"));
  CHECK(f.http.Header(0, "x-api-key") == "<absent>");
}

TEST_CASE("Anthropic: errors in and out of the stream", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kAnthropic, "https://api.anthropic.com/v1"));
  Completion c;
  SECTION("event: error inside a 200 takes its type's class") {
    f.http.Script(Stream({kStream[0], kStream[1],
                          "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                          "\"message\":\"Overloaded\"}}\n\n"}));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(OutcomeName(out.outcome) == "server_error");
    CHECK(out.message.find("overloaded_error") != std::string::npos);
  }
  SECTION("event: error rate_limit_error") {
    f.http.Script(Stream({"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
                          "\"message\":\"slow down\"}}\n\n"}));
    CHECK(OutcomeName(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome) == "rate_limited");
  }
  SECTION("cut before message_stop") {
    f.http.Script(Stream({kStream[0], kStream[1], kStream[2], kStream[3]}));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(OutcomeName(out.outcome) == "server_error");
    CHECK(out.message.find("message_stop") != std::string::npos);
  }
  SECTION("529 overloaded") {
    f.http.Script(Answer(529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"})"));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kServerError);
    CHECK(out.status == 529);
  }
  SECTION("400 credit balance too low") {
    f.http.Script(Answer(400, R"({"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}})"));
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kQuotaExhausted);
  }
  SECTION("429 with retry-after and RFC 3339 resets") {
    f.http.Script(Answer(429, R"({"type":"error","error":{"type":"rate_limit_error","message":"limit"}})",
                         {{"retry-after", "7"}, {"anthropic-ratelimit-tokens-remaining", "0"},
                          {"anthropic-ratelimit-tokens-reset", "2023-11-14T22:13:50Z"}}));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kRateLimited);
    CHECK(*out.limits.retry_at_ms == f.clock.NowMs() + 7000);
    CHECK(*out.limits.tokens_reset_at_ms == f.clock.NowMs() + 30000);
  }
}

TEST_CASE("Anthropic: non-streaming answer, refusal, CheckKey and ListModels", "[unit][providers]") {
  Fixture f;
  ProviderConfig cfg = Config(ProviderType::kAnthropic, "https://api.anthropic.com/v1");
  cfg.stream = false;
  auto p = f.Make(cfg);
  Completion c;
  SECTION("whole message") {
    f.http.Script(Answer(200, R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"A"},{"type":"text","text":"B"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}})"));
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kOk);
    CHECK(c.text == "AB");
    CHECK(c.output_tokens == 2);
    CHECK_FALSE(json::parse(f.http.requests[0].body).contains("stream"));
  }
  SECTION("refusal is returned as is") {
    f.http.Script(Answer(200, R"({"type":"message","content":[],"stop_reason":"refusal","usage":{"input_tokens":3,"output_tokens":0}})"));
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kOk);
    CHECK(c.finish_reason == "refusal");
  }
  SECTION("malformed JSON 200") {
    f.http.Script(Answer(200, "{\"type\":\"message\",\"content\":[{"));
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kServerError);
  }
  SECTION("CheckKey: GET /models?limit=1 with the same headers") {
    f.http.Script(Answer(200, R"({"data":[{"type":"model","id":"claude-x","display_name":"Claude X","created_at":"2026-01-01T00:00:00Z"}],"has_more":true})"));
    HealthInfo h;
    CHECK(p->CheckKey(Key("sk-ant-1"), f.Ctx(), &h).outcome == Outcome::kOk);
    CHECK(f.http.requests[0].method == "GET");
    CHECK(f.http.requests[0].url == "https://api.anthropic.com/v1/models?limit=1");
    CHECK(f.http.Header(0, "x-api-key") == "sk-ant-1");
    CHECK(f.http.Header(0, "anthropic-version") == "2023-06-01");
    f.http.Script(Answer(401, R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})"));
    CHECK(p->CheckKey(Key("bad"), f.Ctx(), &h).outcome == Outcome::kAuthError);
  }
  SECTION("ListModels") {
    f.http.Script(Answer(200, R"({"data":[{"type":"model","id":"claude-x","display_name":"Claude X"}],"has_more":false})"));
    std::vector<ModelInfo> models;
    CHECK(p->ListModels(Key("k"), f.Ctx(), &models).outcome == Outcome::kOk);
    REQUIRE(models.size() == 1);
    CHECK(models[0].id == "claude-x");
    CHECK(models[0].name == "Claude X");
  }
}

TEST_CASE("Anthropic: events and bodies of surprising shapes never throw", "[unit][providers]") {
  Fixture f;
  SECTION("streamed") {
    auto p = f.Make(Config(ProviderType::kAnthropic, "https://api.anthropic.com/v1"));
    const char* kEvents[] = {
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":\"m\"}\n\n",
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":1,\"usage\":[1]}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":\"x\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\","
        "\"text\":{}}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":[],\"usage\":\"u\"}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":\"4\",\"input_tokens\":"
        "18446744073709551615}}\n\n",
    };
    for (const char* event : kEvents) {
      INFO(event);
      f.http.Script(Stream({event, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"}));
      Completion c;
      keypool::AttemptOutcome out;
      CHECK_NOTHROW(out = p->Complete(Key("k"), Hello(), f.Ctx(), &c));
      CHECK(out.outcome == Outcome::kServerError);  // no text in any of them
    }
    f.http.Script(Stream({"event: error\ndata: {\"type\":\"error\",\"error\":42}\n\n"}));
    Completion c;
    keypool::AttemptOutcome out;
    CHECK_NOTHROW(out = p->Complete(Key("k"), Hello(), f.Ctx(), &c));
    CHECK(out.outcome == Outcome::kServerError);
    CHECK(out.message.find("in-stream error") == 0);
  }
  SECTION("whole bodies") {
    ProviderConfig cfg = Config(ProviderType::kAnthropic, "https://api.anthropic.com/v1");
    cfg.stream = false;
    auto p = f.Make(cfg);
    for (const char* body : {R"({"content":"Hi","stop_reason":"end_turn"})",
                             R"({"content":[1,"x",{"type":"text","text":2}],"stop_reason":"end_turn","usage":7})",
                             R"({"type":"error","error":[1]})", R"([{"content":[]}])"}) {
      INFO(body);
      f.http.Script(Answer(200, body));
      Completion c;
      keypool::AttemptOutcome out;
      CHECK_NOTHROW(out = p->Complete(Key("k"), Hello(), f.Ctx(), &c));
      CHECK(out.outcome == Outcome::kServerError);
    }
  }
}

}  // namespace
}  // namespace kpm::providers
