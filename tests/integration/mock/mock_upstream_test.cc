// The scripted mock upstream, spoken to over real HTTP on 127.0.0.1 (tests/support).
#include "tests/support/mock_upstream.h"

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "common/redact.h"

namespace kpm::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

/// One API as a client of it addresses a completion.
struct Api {
  Flavor flavor;
  std::string chat_path;         // non-streamed completion
  std::string stream_path;       // streamed completion
  std::string auth_header;
  std::string auth_prefix;
};

const std::vector<Api>& Apis() {
  static const std::vector<Api> kApis = {
      {Flavor::kOpenAi, "/v1/chat/completions", "/v1/chat/completions", "Authorization", "Bearer "},
      {Flavor::kOpenRouter, "/api/v1/chat/completions", "/api/v1/chat/completions",
       "Authorization", "Bearer "},
      {Flavor::kAnthropic, "/v1/messages", "/v1/messages", "x-api-key", ""},
      {Flavor::kGemini, "/v1beta/models/gemini-x:generateContent",
       "/v1beta/models/gemini-x:streamGenerateContent?alt=sse", "x-goog-api-key", ""},
  };
  return kApis;
}

struct Reply {
  bool complete = false;  // a whole HTTP response arrived
  int status = 0;         // 0 when no status line arrived
  httplib::Headers headers;
  std::string body;       // what arrived, even when the transfer broke off
};

/// Sends one request; collects whatever body arrives, also from a broken transfer.
Reply Send(const MockUpstream& mock, const std::string& method, const std::string& path,
           const httplib::Headers& headers, const std::string& body = "",
           milliseconds timeout = milliseconds(5000)) {
  httplib::Client cli("127.0.0.1", mock.port());
  cli.set_read_timeout(timeout);
  cli.set_connection_timeout(std::chrono::seconds(2));
  httplib::Request req;
  req.method = method;
  req.path = path;
  req.headers = headers;
  req.body = body;
  if (!body.empty()) req.set_header("Content-Type", "application/json");
  Reply out;
  req.response_handler = [&](const httplib::Response& r) {
    out.status = r.status;
    out.headers = r.headers;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    out.body.append(data, n);
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  out.complete = cli.send(req, res, err) && err == httplib::Error::Success;
  return out;
}

Reply Chat(const MockUpstream& mock, const Api& api, const std::string& key, bool stream) {
  Json body = api.flavor == Flavor::kGemini
                  ? Json{{"contents", {{{"role", "user"}, {"parts", {{{"text", "hi"}}}}}}}}
                  : Json{{"model", "model-x"},
                         {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                         {"stream", stream},
                         {"max_tokens", 16}};
  if (stream && api.flavor == Flavor::kOpenAi) body["stream_options"] = {{"include_usage", true}};
  return Send(mock, "POST", stream ? api.stream_path : api.chat_path,
              {{api.auth_header, api.auth_prefix + key}}, body.dump());
}

/// The JSON payloads of an SSE body's data: lines, and the event names seen.
struct Sse {
  std::vector<std::string> data;
  std::vector<std::string> events;
};

Sse ParseSse(const std::string& body) {
  Sse sse;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string::npos) end = body.size();
    std::string line = body.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("data: ", 0) == 0) sse.data.push_back(line.substr(6));
    if (line.rfind("event: ", 0) == 0) sse.events.push_back(line.substr(7));
    pos = end + 1;
  }
  return sse;
}

/// The answer text of a streamed reply, and whether its terminator was seen.
std::pair<std::string, bool> StreamText(Flavor flavor, const std::string& body) {
  Sse sse = ParseSse(body);
  std::string text;
  bool done = false;
  for (const std::string& d : sse.data) {
    if (d == "[DONE]") {
      done = true;
      continue;
    }
    Json j = Json::parse(d, nullptr, false);
    if (j.is_discarded()) continue;
    switch (flavor) {
      case Flavor::kOpenAi:
      case Flavor::kOpenRouter:
        if (!j["choices"].empty() && j["choices"][0]["delta"].contains("content"))
          text += j["choices"][0]["delta"]["content"].get<std::string>();
        break;
      case Flavor::kAnthropic:
        if (j["type"] == "content_block_delta") text += j["delta"]["text"].get<std::string>();
        if (j["type"] == "message_stop") done = true;
        break;
      case Flavor::kGemini:
        text += j["candidates"][0]["content"]["parts"][0]["text"].get<std::string>();
        if (j["candidates"][0].contains("finishReason")) done = true;
        break;
    }
  }
  return {text, done};
}

std::string WholeText(Flavor flavor, const Json& j) {
  switch (flavor) {
    case Flavor::kOpenAi:
    case Flavor::kOpenRouter: return j["choices"][0]["message"]["content"].get<std::string>();
    case Flavor::kAnthropic: return j["content"][0]["text"].get<std::string>();
    case Flavor::kGemini: return j["candidates"][0]["content"]["parts"][0]["text"].get<std::string>();
  }
  return "";
}

TEST_CASE("ok answers each API's success shape, whole and streamed", "[integration][mock]") {
  MockUpstream mock;
  REQUIRE(mock.Start() > 0);
  for (const Api& api : Apis()) {
    DYNAMIC_SECTION(FlavorName(api.flavor)) {
      mock.Script("k-ok", {"ok", "ok:Custom: text here", "ok"});
      Reply whole = Chat(mock, api, "k-ok", false);
      REQUIRE(whole.complete);
      CHECK(whole.status == 200);
      Json j = Json::parse(whole.body, nullptr, false);
      REQUIRE(j.is_object());
      CHECK(WholeText(api.flavor, j) == std::string(kMockDefaultText));

      Reply streamed = Chat(mock, api, "k-ok", true);
      REQUIRE(streamed.complete);
      CHECK(streamed.status == 200);
      CHECK(streamed.headers.find("Content-Type")->second == "text/event-stream");
      auto [text, done] = StreamText(api.flavor, streamed.body);
      CHECK(text == "Custom: text here");
      CHECK(done);
      if (api.flavor == Flavor::kOpenAi) {  // include_usage: a usage chunk before [DONE]
        Sse sse = ParseSse(streamed.body);
        REQUIRE(sse.data.size() >= 2);
        CHECK(Json::parse(sse.data[sse.data.size() - 2])["usage"]["total_tokens"] > 0);
      }
      if (api.flavor == Flavor::kAnthropic) {
        Sse sse = ParseSse(streamed.body);
        CHECK(sse.events.front() == "message_start");
        CHECK(sse.events.back() == "message_stop");
      }
      if (api.flavor == Flavor::kGemini) CHECK(streamed.body.find("\r\n\r\n") != std::string::npos);
      if (api.flavor == Flavor::kOpenRouter)
        CHECK(streamed.body.rfind(": OPENROUTER PROCESSING", 0) == 0);
    }
  }
}

TEST_CASE("error steps answer in each API's error format", "[integration][mock]") {
  struct Row {
    Flavor flavor;
    std::string step;
    int status;
    std::string pointer;  // JSON pointer into the body
    Json expected;
  };
  const std::vector<Row> rows = {
      {Flavor::kOpenAi, "429", 429, "/error/code", "rate_limit_exceeded"},
      {Flavor::kOpenAi, "insufficient_quota", 429, "/error/type", "insufficient_quota"},
      {Flavor::kOpenAi, "401", 401, "/error/code", "invalid_api_key"},
      {Flavor::kOpenAi, "403", 403, "/error/code", "unsupported_country_region_territory"},
      {Flavor::kOpenAi, "404", 404, "/error/code", "model_not_found"},
      {Flavor::kOpenAi, "context_length", 400, "/error/code", "context_length_exceeded"},
      {Flavor::kOpenAi, "500", 500, "/error/type", "server_error"},
      {Flavor::kOpenAi, "503", 503, "/error/code", "server_is_overloaded"},
      {Flavor::kOpenRouter, "402", 402, "/error/metadata/error_type", "payment_required"},
      {Flavor::kOpenRouter, "429", 429, "/error/metadata/error_type", "rate_limit_exceeded"},
      {Flavor::kOpenRouter, "insufficient_quota", 429, "/error/metadata/limit_source",
       "openrouter_free_tier_daily"},
      {Flavor::kOpenRouter, "401", 401, "/error/code", 401},
      {Flavor::kOpenRouter, "context_length", 400, "/error/metadata/error_type",
       "context_length_exceeded"},
      {Flavor::kOpenRouter, "502", 502, "/error/metadata/error_type", "provider_unavailable"},
      {Flavor::kAnthropic, "429", 429, "/error/type", "rate_limit_error"},
      {Flavor::kAnthropic, "402", 402, "/error/type", "billing_error"},
      {Flavor::kAnthropic, "529", 529, "/error/type", "overloaded_error"},
      {Flavor::kAnthropic, "401", 401, "/error/type", "authentication_error"},
      {Flavor::kAnthropic, "403", 403, "/error/type", "permission_error"},
      {Flavor::kAnthropic, "500", 500, "/error/type", "api_error"},
      {Flavor::kAnthropic, "400", 400, "/type", "error"},
      {Flavor::kGemini, "429", 429, "/error/status", "RESOURCE_EXHAUSTED"},
      {Flavor::kGemini, "401", 400, "/error/details/0/reason", "API_KEY_INVALID"},
      {Flavor::kGemini, "403", 403, "/error/status", "PERMISSION_DENIED"},
      {Flavor::kGemini, "404", 404, "/error/status", "NOT_FOUND"},
      {Flavor::kGemini, "503", 503, "/error/status", "UNAVAILABLE"},
      {Flavor::kGemini, "500", 500, "/error/status", "INTERNAL"},
  };
  MockUpstream mock;
  REQUIRE(mock.Start() > 0);
  for (const Row& row : rows) {
    const Api& api = *std::find_if(Apis().begin(), Apis().end(),
                                   [&](const Api& a) { return a.flavor == row.flavor; });
    for (bool stream : {false, true}) {
      INFO(FlavorName(row.flavor) << " " << row.step << (stream ? " streamed" : ""));
      mock.Script("k-err", {row.step});
      Reply r = Chat(mock, api, "k-err", stream);
      REQUIRE(r.complete);
      CHECK(r.status == row.status);
      Json j = Json::parse(r.body, nullptr, false);
      REQUIRE(j.is_object());
      CHECK(j.value(Json::json_pointer(row.pointer), Json()) == row.expected);
    }
  }
}

TEST_CASE("context and quota wordings follow each API", "[integration][mock]") {
  MockUpstream mock;
  REQUIRE(mock.Start() > 0);
  const Api& anthropic = Apis()[2];
  const Api& gemini = Apis()[3];

  mock.Script("k", {"insufficient_quota", "context_length"});
  Reply credit = Chat(mock, anthropic, "k", false);
  CHECK(credit.status == 400);
  CHECK(credit.body.find("credit balance is too low") != std::string::npos);
  Reply context = Chat(mock, anthropic, "k", false);
  CHECK(context.status == 400);
  CHECK(context.body.find("prompt is too long") != std::string::npos);

  mock.Script("k", {"insufficient_quota", "429"});
  Json daily = Json::parse(Chat(mock, gemini, "k", false).body);
  CHECK(daily["error"]["details"][0]["violations"][0]["quotaId"].get<std::string>().find(
            "PerDay") != std::string::npos);
  Json minute = Json::parse(Chat(mock, gemini, "k", false).body);
  CHECK(minute["error"]["details"][0]["violations"][0]["quotaId"].get<std::string>().find(
            "PerMinute") != std::string::npos);
  CHECK(minute["error"]["details"].size() == 1);  // no hint unless scripted
}

TEST_CASE("429:retry-after=N adds Retry-After, and RetryInfo for Gemini", "[integration][mock]") {
  MockUpstream mock;
  REQUIRE(mock.Start() > 0);
  for (const Api& api : Apis()) {
    INFO(FlavorName(api.flavor));
    mock.Script("k", {"429:retry-after=2", "429"});
    Reply hinted = Chat(mock, api, "k", false);
    CHECK(hinted.status == 429);
    CHECK(hinted.headers.find("retry-after")->second == "2");
    if (api.flavor == Flavor::kGemini) {
      Json j = Json::parse(hinted.body);
      CHECK(j["error"]["details"].back()["retryDelay"] == "2s");
    }
    Reply bare = Chat(mock, api, "k", false);
    CHECK(bare.status == 429);
    CHECK(bare.headers.count("retry-after") == 0);
  }
}

TEST_CASE("remaining0 says 'no requests left' in the API's headers", "[integration][mock]") {
  MockUpstream mock;
  REQUIRE(mock.Start() > 0);
  mock.SetDefault("k", "remaining0");
  Reply openai = Chat(mock, Apis()[0], "k", false);
  CHECK(openai.status == 200);
  CHECK(openai.headers.find("x-ratelimit-remaining-requests")->second == "0");
  CHECK(openai.headers.find("x-ratelimit-reset-requests")->second == "30s");
  Reply anthropic = Chat(mock, Apis()[2], "k", true);
  CHECK(anthropic.status == 200);
  CHECK(anthropic.headers.find("anthropic-ratelimit-requests-remaining")->second == "0");
  std::string reset = anthropic.headers.find("anthropic-ratelimit-requests-reset")->second;
  CHECK(reset.size() == 20);
  CHECK(reset.back() == 'Z');
  CHECK(StreamText(Flavor::kAnthropic, anthropic.body).second);
}

TEST_CASE("stream faults: cut, malformed, inband_error", "[integration][mock]") {
  MockUpstream mock;
  REQUIRE(mock.Start() > 0);
  for (const Api& api : Apis()) {
    INFO(FlavorName(api.flavor));
    mock.Script("k", {"cut", "malformed", "inband_error", "cut"});

    Reply cut = Chat(mock, api, "k", true);
    CHECK(cut.status == 200);
    CHECK_FALSE(cut.complete);  // the chunked body never ended
    auto [text, done] = StreamText(api.flavor, cut.body);
    CHECK_FALSE(done);
    CHECK(!text.empty());
    CHECK(text.size() < kMockDefaultText.size());

    Reply bad = Chat(mock, api, "k", true);
    CHECK(bad.status == 200);
    bool any_garbage = false;
    for (const std::string& d : ParseSse(bad.body).data)
      any_garbage |= d != "[DONE]" && Json::parse(d, nullptr, false).is_discarded();
    CHECK(any_garbage);

    Reply inband = Chat(mock, api, "k", true);
    CHECK(inband.status == 200);
    Sse sse = ParseSse(inband.body);
    REQUIRE(!sse.data.empty());
    Json last = Json::parse(sse.data.back());
    CHECK(last.contains("error"));
    if (api.flavor == Flavor::kOpenRouter)
      CHECK(last["choices"][0]["finish_reason"] == "error");
    if (api.flavor == Flavor::kAnthropic) {
      CHECK(sse.events.back() == "error");
      CHECK(last["error"]["type"] == "overloaded_error");
    }

    Reply cut_whole = Chat(mock, api, "k", false);
    CHECK(cut_whole.status == 200);
    CHECK_FALSE(cut_whole.complete);
    CHECK(Json::parse(cut_whole.body, nullptr, false).is_discarded());
  }
}

TEST_CASE("drop closes the connection without any answer", "[integration][mock]") {
  MockUpstream mock;
  REQUIRE(mock.Start() > 0);
  mock.Script("k", {"drop"});
  Reply r = Chat(mock, Apis()[0], "k", false);
  CHECK_FALSE(r.complete);
  CHECK(r.status == 0);
  CHECK(Chat(mock, Apis()[0], "k", false).status == 200);  // the server is fine after
  CHECK(mock.Requests().front().status == 0);
}

TEST_CASE("echo_key answers 401 with the whole key in text and URL", "[integration][mock]") {
  MockUpstream mock;
  REQUIRE(mock.Start() > 0);
  const std::string key = "sk-canary-0123456789abcdef/+";
  for (const Api& api : Apis()) {
    mock.Script(key, {"echo_key"});
    Reply r = Chat(mock, api, key, false);
    CHECK(r.status == 401);
    CHECK(r.body.find(key) != std::string::npos);
    CHECK(r.body.find("sk-canary-0123456789abcdef%2F%2B") != std::string::npos);
  }
  for (const RecordedRequest& rec : mock.Requests()) CHECK(rec.key_fingerprint == Fingerprint(key));
}

TEST_CASE("a key's steps pop in order, then its default, then ok", "[integration][mock]") {
  MockUpstream mock;
  REQUIRE(mock.Start() > 0);
  const Api& api = Apis()[0];
  mock.Script("a", {"429", "500", "ok:third"});
  mock.Script("*", {"503"});
  mock.SetDefault("a", "401");
  mock.SetDefault("*", "402");

  CHECK(Chat(mock, api, "a", false).status == 429);
  CHECK(Chat(mock, api, "b", false).status == 503);  // "*" script, copied for b
  CHECK(Chat(mock, api, "a", false).status == 500);
  Reply third = Chat(mock, api, "a", false);
  CHECK(WholeText(api.flavor, Json::parse(third.body)) == "third");
  CHECK(Chat(mock, api, "a", false).status == 401);  // a's default
  CHECK(Chat(mock, api, "a", false).status == 401);
  CHECK(Chat(mock, api, "b", false).status == 402);  // "*" default
  CHECK(Chat(mock, api, "c", false).status == 503);  // c gets its own copy of "*"
  CHECK(Chat(mock, api, "", false).status == 503);   // no key is the key ""

  mock.Reset();
  CHECK(mock.Requests().empty());
  CHECK(Chat(mock, api, "a", false).status == 200);  // everything forgotten: ok
}

TEST_CASE("Requests() records each request in order, keys only as fingerprints",
          "[integration][mock]") {
  MockUpstream mock;
  REQUIRE(mock.Start() > 0);
  const std::string k1 = "sk-proj-AAAAAAAAAAAAAAAA1111";
  const std::string k2 = "sk-ant-BBBBBBBBBBBBBBBBB2222";
  mock.Script(k1, {"429"});
  Chat(mock, Apis()[0], k1, true);
  Chat(mock, Apis()[2], k2, false);
  Chat(mock, Apis()[3], k1, true);
  std::vector<RecordedRequest> recs = mock.Requests();
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].key_fingerprint == Fingerprint(k1));
  CHECK(recs[0].flavor == Flavor::kOpenAi);
  CHECK(recs[0].model == "model-x");
  CHECK(recs[0].stream);
  CHECK(recs[0].status == 429);
  CHECK(recs[0].step == "429");
  CHECK(recs[1].key_fingerprint == Fingerprint(k2));
  CHECK(recs[1].flavor == Flavor::kAnthropic);
  CHECK(recs[1].path == "/v1/messages");
  CHECK_FALSE(recs[1].stream);
  CHECK(recs[2].flavor == Flavor::kGemini);
  CHECK(recs[2].model == "gemini-x");
  CHECK(recs[2].stream);
  CHECK(recs[0].time <= recs[2].time);
  for (const RecordedRequest& rec : recs) {
    std::string all = RecordedRequestJson(rec);
    CHECK(all.find(k1) == std::string::npos);
    CHECK(all.find(k2) == std::string::npos);
  }
}

TEST_CASE("/models answers in the flavor of the auth header, /key as OpenRouter",
          "[integration][mock]") {
  MockUpstream mock;
  REQUIRE(mock.Start() > 0);
  Json openai = Json::parse(Send(mock, "GET", "/v1/models", {{"Authorization", "Bearer k"}}).body);
  CHECK(openai["object"] == "list");
  CHECK(openai["data"][0]["object"] == "model");
  Json anthropic = Json::parse(
      Send(mock, "GET", "/v1/models?limit=1", {{"x-api-key", "k"}, {"anthropic-version", "2023-06-01"}})
          .body);
  CHECK(anthropic["data"][0]["type"] == "model");
  CHECK(anthropic["has_more"] == false);
  Json gemini = Json::parse(Send(mock, "GET", "/v1beta/models?pageSize=1", {{"x-goog-api-key", "k"}}).body);
  CHECK(gemini["models"][0]["name"] == "models/gemini-mock");
  Json key = Json::parse(Send(mock, "GET", "/api/v1/key", {{"Authorization", "Bearer k"}}).body);
  CHECK(key["data"].contains("limit_remaining"));

  mock.Script("bad", {"401", "401"});
  CHECK(Send(mock, "GET", "/v1/models", {{"x-api-key", "bad"}}).status == 401);
  CHECK(Send(mock, "GET", "/v1beta/models", {{"x-goog-api-key", "bad"}}).status == 400);
  CHECK(Send(mock, "GET", "/nowhere", {}).status == 404);
}

TEST_CASE("delay and slow take their time, Gemini without alt=sse streams a JSON array",
          "[integration][mock]") {
  MockUpstream mock;
  REQUIRE(mock.Start() > 0);
  mock.Script("k", {"delay:150", "slow:40", "delay:50:503"});
  auto t0 = Clock::now();
  CHECK(Chat(mock, Apis()[0], "k", false).status == 200);
  CHECK(Clock::now() - t0 >= milliseconds(150));
  t0 = Clock::now();
  Reply slow = Chat(mock, Apis()[2], "k", true);
  CHECK(StreamText(Flavor::kAnthropic, slow.body).first == std::string(kMockDefaultText));
  CHECK(Clock::now() - t0 >= milliseconds(4 * 40));  // five pieces, four gaps at least
  CHECK(Chat(mock, Apis()[3], "k", false).status == 503);

  Reply array = Send(mock, "POST", "/v1beta/models/g:streamGenerateContent",
                     {{"x-goog-api-key", "k"}}, "{}");
  Json j = Json::parse(array.body, nullptr, false);
  REQUIRE(j.is_array());
  CHECK(j.back()["candidates"][0]["finishReason"] == "STOP");
}

TEST_CASE("hang sends nothing, lets a client that gave up go, and never blocks shutdown",
          "[integration][mock]") {
  SECTION("the client gives up; the server serves on") {
    MockUpstream mock;
    REQUIRE(mock.Start() > 0);
    mock.Script("k", {"hang"});
    auto t0 = Clock::now();
    Reply r = Send(mock, "POST", "/v1/chat/completions", {{"Authorization", "Bearer k"}}, "{}",
                   milliseconds(200));
    CHECK_FALSE(r.complete);
    CHECK(r.status == 0);
    CHECK(Clock::now() - t0 < milliseconds(2000));
    CHECK(Chat(mock, Apis()[0], "k", false).status == 200);
    CHECK(mock.Requests().front().status == 0);
  }
  SECTION("destruction ends a hang at once") {
    auto mock = std::make_unique<MockUpstream>();
    REQUIRE(mock->Start() > 0);
    mock->SetDefault("k", "hang");
    auto pending = std::async(std::launch::async, [&] {
      return Send(*mock, "POST", "/v1/chat/completions", {{"Authorization", "Bearer k"}}, "{}",
                  milliseconds(10000));
    });
    while (mock->Requests().empty()) std::this_thread::sleep_for(milliseconds(5));
    auto t0 = Clock::now();
    mock->Stop();
    CHECK(Clock::now() - t0 < milliseconds(1000));
    Reply r = pending.get();
    CHECK_FALSE(r.complete);
    CHECK(r.status == 0);
    mock.reset();
  }
}

TEST_CASE("the HTTP control API scripts, records and resets", "[integration][mock]") {
  MockUpstream mock;
  REQUIRE(mock.Start() > 0);
  auto post = [&](const std::string& path, const Json& body) {
    return Send(mock, "POST", path, {}, body.dump());
  };
  CHECK(post("/_mock/script", {{"key", "a"}, {"steps", {"429", {{"step", "ok"}, {"text", "T"}}}}})
            .status == 200);
  CHECK(post("/_mock/script", {{"keys", {{"b", {"500"}}}}}).status == 200);
  CHECK(post("/_mock/default", {{"key", "b"}, {"step", "404"}}).status == 200);
  Reply bad = post("/_mock/script", {{"key", "a"}, {"steps", {"ok", "bogus"}}});
  CHECK(bad.status == 400);
  CHECK(bad.body.find("bogus") != std::string::npos);
  CHECK(post("/_mock/default", {{"key", "a"}, {"step", {{"step", "ok"}, {"nope", 1}}}}).status == 400);

  const Api& api = Apis()[0];
  CHECK(Chat(mock, api, "a", false).status == 429);
  CHECK(WholeText(api.flavor, Json::parse(Chat(mock, api, "a", false).body)) == "T");
  CHECK(Chat(mock, api, "b", false).status == 500);
  CHECK(Chat(mock, api, "b", false).status == 404);

  Json recs = Json::parse(Send(mock, "GET", "/_mock/requests", {}).body);
  REQUIRE(recs.size() == 4);
  CHECK(recs[0]["key_fingerprint"] == Fingerprint("a"));
  CHECK(recs[0]["status"] == 429);
  CHECK(recs[0]["flavor"] == "openai");
  CHECK(recs[3]["status"] == 404);

  CHECK(post("/_mock/reset", Json::object()).status == 200);
  CHECK(Json::parse(Send(mock, "GET", "/_mock/requests", {}).body).empty());
  CHECK(Chat(mock, api, "b", false).status == 200);
}

TEST_CASE("the step language rejects what it does not know", "[integration][mock]") {
  for (const char* good : {"ok", "ok:a:b", "429:retry-after=2", "429:retry-after-ms=1500",
                           "insufficient_quota", "context_length", "delay:10", "delay:10:429",
                           "slow:5", "hang", "hang:100", "drop", "cut", "malformed", "echo_key",
                           "remaining0", "remaining0:5", "inband_error", "inband_error:429",
                           "status:418:{}", "504", "empty"}) {
    INFO(good);
    CHECK(ParseMockStep(good).has_value());
  }
  for (const char* bad : {"", "okay", "429:retry=2", "delay", "delay:x", "status:42:x", "hang:x",
                          "drop:1", "inband_error:hello", "1000"}) {
    INFO(bad);
    CHECK_FALSE(ParseMockStep(bad).has_value());
  }
  auto with_headers = ParseMockStepJson(Json{{"step", "500"}, {"headers", {{"x-a", "1"}}}});
  REQUIRE(with_headers.has_value());
  CHECK(with_headers->headers.at("x-a") == "1");
  MockUpstream mock;
  REQUIRE(mock.Start() > 0);
  mock.Script("k", {"not-a-step"});
  CHECK(Chat(mock, Apis()[0], "k", false).status == 599);
}

}  // namespace
}  // namespace kpm::testing
