#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/unit/providers/provider_test_util.h"

namespace kpm::providers {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace)

// Modelled on GenerateContentResponse chunks; CRLF framing as Gemini sends it.
const std::vector<std::string> kStream = {
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"thinking\",\"thought\":true},{\"text\":\"Bon\"}],"
    "\"role\":\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":4},\"modelVersion\":\"gemini-x-001\"}\r\n\r\n",
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"jour\"}],\"role\":\"model\"},\"finishReason\":\"STOP\","
    "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":2,\"totalTokenCount\":6},"
    "\"modelVersion\":\"gemini-x-001\"}\r\n\r\n"};

TEST_CASE("Gemini: request shape and a streamed answer", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kGemini, "https://generativelanguage.googleapis.com/v1beta"));
  f.http.Script(Stream(kStream));
  CompletionRequest r = Hello();
  r.model = "models/gemini-x";
  std::vector<size_t> progress;
  Completion c;
  auto out = p->Complete(Key("AIzaSyFAKE"), r, f.Ctx(&progress), &c);

  CHECK(OutcomeName(out.outcome) == "ok");
  CHECK(c.text == "Bonjour");
  CHECK(c.finish_reason == "STOP");
  CHECK(c.model == "gemini-x-001");
  CHECK(c.input_tokens == 4);
  CHECK(c.output_tokens == 2);
  CHECK(progress == std::vector<size_t>{3, 7});

  const HttpRequest& req = f.http.requests.at(0);
  CHECK(req.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-x:streamGenerateContent?alt=sse");
  CHECK(req.url.find("AIza") == std::string::npos);
  CHECK(f.http.Header(0, "x-goog-api-key") == "AIzaSyFAKE");
  CHECK(f.http.Header(0, "Authorization") == "<absent>");
  json body = json::parse(req.body);
  CHECK(body["contents"] == json::parse(R"([{"role":"user","parts":[{"text":"hi"}]},{"role":"model","parts":[{"text":"hello"}]},{"role":"user","parts":[{"text":"again"}]}])"));
  CHECK(body["systemInstruction"] == json::parse(R"({"parts":[{"text":"Be brief."}]})"));
  CHECK(body["generationConfig"]["maxOutputTokens"] == 64);
  CHECK(body["generationConfig"]["temperature"] == 0.2);
}

TEST_CASE("Gemini: stream completeness and in-band errors", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kGemini, "https://generativelanguage.googleapis.com/v1beta"));
  Completion c;
  SECTION("a close without finishReason is a cut") {
    f.http.Script(Stream({kStream[0]}));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(OutcomeName(out.outcome) == "server_error");
    CHECK(out.message.find("finishReason") != std::string::npos);
  }
  SECTION("an {\"error\":...} chunk") {
    f.http.Script(Stream({kStream[0], "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\","
                                      "\"status\":\"UNAVAILABLE\"}}\r\n\r\n"}));
    CHECK(OutcomeName(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome) == "server_error");
  }
  SECTION("an in-band RESOURCE_EXHAUSTED per day") {
    f.http.Script(Stream({"data: {\"error\":{\"code\":429,\"message\":\"quota\",\"status\":\"RESOURCE_EXHAUSTED\","
                          "\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":"
                          "[{\"quotaId\":\"GenerateRequestsPerDayPerProjectPerModel-FreeTier\"}]}]}}\r\n\r\n"}));
    CHECK(OutcomeName(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome) == "quota_exhausted");
  }
  SECTION("a blocked prompt is a bad request") {
    f.http.Script(Stream({"data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":"
                          "{\"promptTokenCount\":4}}\r\n\r\n"}));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(OutcomeName(out.outcome) == "bad_request");
    CHECK(out.message.find("SAFETY") != std::string::npos);
  }
  SECTION("finishReason SAFETY with no text is returned as is") {
    f.http.Script(Stream({"data: {\"candidates\":[{\"finishReason\":\"SAFETY\",\"index\":0}]}\r\n\r\n"}));
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kOk);
    CHECK(c.finish_reason == "SAFETY");
  }
  SECTION("429 RESOURCE_EXHAUSTED per minute with retryDelay") {
    f.http.Script(Answer(429, R"({"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"m","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"35s"}]}})"));
    auto out = p->Complete(Key("k"), Hello(), f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kRateLimited);
    CHECK(*out.limits.retry_at_ms == f.clock.NowMs() + 35000);
  }
  SECTION("400 API_KEY_INVALID in a one-element array") {
    f.http.Script(Answer(400, R"([{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}])"));
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kAuthError);
  }
}

TEST_CASE("Gemini: non-streaming, CheckKey and ListModels", "[unit][providers]") {
  Fixture f;
  ProviderConfig cfg = Config(ProviderType::kGemini, "https://generativelanguage.googleapis.com/v1beta");
  cfg.stream = false;
  auto p = f.Make(cfg);
  Completion c;
  SECTION(":generateContent") {
    f.http.Script(Answer(200, R"({"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":1}})"));
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kOk);
    CHECK(c.text == "Hi");
    CHECK(c.model == "default-model");
    CHECK(f.http.requests[0].url == "https://generativelanguage.googleapis.com/v1beta/models/default-model:generateContent");
  }
  SECTION("malformed JSON 200") {
    f.http.Script(Answer(200, "[{\"candidates\""));
    CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kServerError);
  }
  SECTION("CheckKey: GET /models?pageSize=1") {
    f.http.Script(Answer(200, R"({"models":[{"name":"models/gemini-x","displayName":"Gemini X"}],"nextPageToken":"t"})"));
    HealthInfo h;
    CHECK(p->CheckKey(Key("AIza1"), f.Ctx(), &h).outcome == Outcome::kOk);
    CHECK(f.http.requests[0].url == "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1");
    CHECK(f.http.Header(0, "x-goog-api-key") == "AIza1");
    f.http.Script(Answer(403, R"({"error":{"code":403,"message":"Your API key was reported as leaked.","status":"PERMISSION_DENIED"}})"));
    CHECK(p->CheckKey(Key("AIza1"), f.Ctx(), &h).outcome == Outcome::kAuthError);
  }
  SECTION("ListModels strips models/") {
    f.http.Script(Answer(200, R"({"models":[{"name":"models/gemini-x","displayName":"Gemini X","inputTokenLimit":1000}]})"));
    std::vector<ModelInfo> models;
    CHECK(p->ListModels(Key("k"), f.Ctx(), &models).outcome == Outcome::kOk);
    REQUIRE(models.size() == 1);
    CHECK(models[0].id == "gemini-x");
    CHECK(models[0].name == "Gemini X");
  }
}

TEST_CASE("Gemini: a part is a thought only when thought is boolean true", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kGemini, "https://generativelanguage.googleapis.com/v1beta"));
  struct Case {
    const char* thought;
    bool skipped;
  };
  for (const Case& k : {Case{"true", true}, Case{"false", false}, Case{"\"yes\"", false}, Case{"null", false},
                        Case{"1", false}, Case{"{}", false}}) {
    INFO("thought: " << k.thought);
    f.http.Script(Stream({std::string("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hmm \",\"thought\":") +
                          k.thought + "},{\"text\":\"Hi\"}]},\"finishReason\":\"STOP\"}]}\r\n\r\n"}));
    Completion c;
    keypool::AttemptOutcome out;
    CHECK_NOTHROW(out = p->Complete(Key("k"), Hello(), f.Ctx(), &c));
    CHECK(out.outcome == Outcome::kOk);
    CHECK(c.text == (k.skipped ? "Hi" : "hmm Hi"));
  }
}

TEST_CASE("Gemini: responses of surprising shapes never throw", "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kGemini, "https://generativelanguage.googleapis.com/v1beta"));
  const char* kChunks[] = {
      R"({"candidates":[{"content":{"parts":[7,null,"x",{"text":5}]},"finishReason":"STOP"}]})",
      R"({"candidates":[{"content":"text","finishReason":"STOP"}]})",
      R"({"candidates":[{"content":{"parts":{"text":"x"}},"finishReason":"STOP"}]})",
      R"({"candidates":["x"],"usageMetadata":{"promptTokenCount":"4","candidatesTokenCount":1e300}})",
      R"({"promptFeedback":"blocked"})",
      R"({"candidates":[],"promptFeedback":{"blockReason":17}})",
  };
  for (const char* chunk : kChunks) {
    INFO(chunk);
    f.http.Script(Stream({std::string("data: ") + chunk + "\r\n\r\n"}));
    Completion c;
    keypool::AttemptOutcome out;
    CHECK_NOTHROW(out = p->Complete(Key("k"), Hello(), f.Ctx(), &c));
    CHECK(out.outcome == Outcome::kServerError);
  }
}

TEST_CASE("Gemini: the model is one encoded path segment, or a bad request before anything is sent",
          "[unit][providers]") {
  Fixture f;
  auto p = f.Make(Config(ProviderType::kGemini, "https://generativelanguage.googleapis.com/v1beta"));
  Completion c;
  for (const char* model : {"../../../admin/x", "models/../../x", "a?b", "a#b", "a%2Fb", "a b", "a\nb", "models/"}) {
    CompletionRequest r = Hello();
    r.model = model;
    INFO("model: " << model);
    auto out = p->Complete(Key("k"), r, f.Ctx(), &c);
    CHECK(out.outcome == Outcome::kBadRequest);
    CHECK(out.status == 0);
    CHECK(out.message.find("cannot be used as a Gemini model") != std::string::npos);
    CHECK(f.http.requests.empty());
  }
  SECTION("a normal model stays under baseUrl") {
    CompletionRequest r = Hello();
    r.model = "models/gemini-2.5-flash";
    f.http.Script(Stream(kStream));
    CHECK(p->Complete(Key("k"), r, f.Ctx(), &c).outcome == Outcome::kOk);
    CHECK(f.http.requests.at(0).url ==
          "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
  }
  SECTION("other characters are percent-encoded") {
    CompletionRequest r = Hello();
    r.model = "tuned:v1+\xC3\xA9";
    f.http.Script(Stream(kStream));
    (void)p->Complete(Key("k"), r, f.Ctx(), &c);
    CHECK(f.http.requests.at(0).url ==
          "https://generativelanguage.googleapis.com/v1beta/models/tuned%3Av1%2B%C3%A9:streamGenerateContent?alt=sse");
  }
}

TEST_CASE("Gemini: with no model anywhere the type's default is used", "[unit][providers]") {
  Fixture f;
  ProviderConfig cfg = Config(ProviderType::kGemini, "https://generativelanguage.googleapis.com/v1beta");
  cfg.model.clear();
  auto p = f.Make(cfg);
  f.http.Script(Stream(kStream));
  Completion c;
  CHECK(p->Complete(Key("k"), Hello(), f.Ctx(), &c).outcome == Outcome::kOk);
  CHECK(f.http.requests.at(0).url ==
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-flash-latest:streamGenerateContent?alt=sse");
}

}  // namespace
}  // namespace kpm::providers
