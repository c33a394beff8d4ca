// End to end, failover that finishes the job (issue #8): the fallback answers on every
// way the primary can be done, keys on different endpoints share one pool, and a
// config without a model answers its first call. The built keypool-mcp against the
// mock-upstream binary; each test checks what the agent sees, what the upstream saw
// and where the pool stands afterwards.
#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/e2e_fixture.h"

namespace kpm::testing {
namespace {

bool Contains(std::string_view text, std::string_view needle) { return text.find(needle) != std::string_view::npos; }

/// The number of completion requests the mock saw with a key ending in `last4`.
size_t Seen(MockProcess& mock, const std::string& last4) {
  auto keys = mock.KeysSeen();
  return static_cast<size_t>(std::count(keys.begin(), keys.end(), last4));
}

/// openai with two keys (canary 1 and 2) and openrouter (canary 3) as its fallback.
struct FallbackRig {
  explicit FallbackRig(const std::string& primary_extra = kFastFailover, const std::string& top = "fallback: [openrouter]\n")
      : rig(KeypoolBinary(), MockBinary()) {
    primary = MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1, kCanary2}, primary_extra);
    backup = MockProvider(rig.mock, "openrouter", "openrouter", "mock/model-1", {kCanary3});
    top_extra = top;
  }
  E2eServer& Start() { return rig.Start({primary, backup}, top_extra); }
  E2eRig rig;
  ProviderSpec primary;
  ProviderSpec backup;
  std::string top_extra;
};

TEST_CASE("503 on every primary key: the fallback answers after at most 2 primary attempts", "[e2e][fallback]") {
  FallbackRig f;
  f.rig.mock.SetDefault(kCanary1, "503");
  f.rig.mock.SetDefault(kCanary2, "503");
  E2eServer& server = f.Start();
  Json result = server.Complete();
  INFO(result.dump());
  CHECK_FALSE(result.value("isError", false));
  const Json& sc = result["structuredContent"];
  CHECK(sc["provider"] == "openrouter");
  CHECK(sc["model"] == "mock/model-1");
  CHECK(ResultText(result) == "Hello from the mock upstream.");
  CHECK(Seen(f.rig.mock, "1111") + Seen(f.rig.mock, "2222") <= 2);
  CHECK(Seen(f.rig.mock, "3333") == 1);
  auto keys = server.KeyStatus();
  CHECK(keys["openai#1"]["state"] == "ready");
  CHECK(keys["openai#2"]["state"] == "ready");
  // What a person reads in the log for a primary outage (stderr is read by a thread
  // of the driver: wait for the line rather than race it).
  const bool logged = server.process().WaitForStderr(
      "openai: server errors (503) on 2 attempt(s) \xE2\x86\x92 falling back to openrouter", kReadTimeout);
  INFO("stderr:\n" << server.process().Stderr());
  CHECK(logged);
  server.CloseAndExpectCleanExit();
}

TEST_CASE("A broken primary stream on every key: the fallback answers with its whole text", "[e2e][fallback]") {
  struct Case {
    const char* name;
    std::string step;
    std::string extra;
  };
  // A stream that ends cleanly at the HTTP level but without [DONE].
  const std::string no_terminator =
      R"({"status": 200, "body": "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"half\"}}]}\n\n"})";
  const std::vector<Case> cases = {
      {"cut", "cut", kFastFailover},
      {"stall (idleTimeoutMs)", "slow:1500", kFastFailover + "    idleTimeoutMs: 300\n"},
      {"malformed chunk", "malformed", kFastFailover},
      {"missing terminator", no_terminator, kFastFailover},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      FallbackRig f(c.extra);
      // A raw step is JSON; SetDefault takes the step language, so it is queued instead.
      if (c.step.front() == '{') {
        Json step = Json::parse(c.step);
        f.rig.mock.ScriptJson(kCanary1, Json::array({step, step}));
        f.rig.mock.ScriptJson(kCanary2, Json::array({step, step}));
      } else {
        f.rig.mock.SetDefault(kCanary1, c.step);
        f.rig.mock.SetDefault(kCanary2, c.step);
      }
      f.rig.mock.Script(kCanary3, {"ok:the whole answer from the fallback"});
      E2eServer& server = f.Start();
      Json result = server.Complete();
      INFO(result.dump());
      CHECK_FALSE(result.value("isError", false));
      CHECK(result["structuredContent"]["provider"] == "openrouter");
      CHECK(ResultText(result) == "the whole answer from the fallback");
      CHECK(Seen(f.rig.mock, "1111") + Seen(f.rig.mock, "2222") <= 2);
      server.CloseAndExpectCleanExit();
    }
  }
}

TEST_CASE("A primary that never answers: one first-byte timeout, then the fallback", "[e2e][fallback]") {
  const std::string extra = kFastFailover + "    firstByteTimeoutMs: 300\n";
  SECTION("with a fallback the second primary key is never attempted") {
    FallbackRig f(extra);
    f.rig.mock.SetDefault(kCanary1, "hang:5000");
    f.rig.mock.SetDefault(kCanary2, "hang:5000");
    E2eServer& server = f.Start();
    Json result = server.Complete();
    INFO(result.dump());
    CHECK_FALSE(result.value("isError", false));
    CHECK(result["structuredContent"]["provider"] == "openrouter");
    CHECK(Outcomes(result) == std::vector<std::string>{"timeout", "ok"});
    CHECK(f.rig.mock.KeysSeen() == std::vector<std::string>{"1111", "3333"});
    server.CloseAndExpectCleanExit();
  }
  SECTION("without a fallback the next key is tried") {
    FallbackRig f(extra, "");
    f.rig.mock.SetDefault(kCanary1, "hang:5000");
    E2eServer& server = f.Start();
    Json result = server.Complete({{"prompt", "hi"}, {"provider", "openai"}});
    INFO(result.dump());
    CHECK_FALSE(result.value("isError", false));
    CHECK(Outcomes(result) == std::vector<std::string>{"timeout", "ok"});
    CHECK(f.rig.mock.KeysSeen() == std::vector<std::string>{"1111", "2222"});
    server.CloseAndExpectCleanExit();
  }
}

TEST_CASE("The server-error budget is per provider: primary 5xx twice, fallback 5xx once, then ok",
          "[e2e][fallback]") {
  FallbackRig f(kFastFailover + "      serverErrorRetries: 1\n");
  f.rig.mock.SetDefault(kCanary1, "500");
  f.rig.mock.SetDefault(kCanary2, "500");
  f.rig.mock.Script(kCanary3, {"502", "ok"});
  E2eServer& server = f.Start();
  Json result = server.Complete();
  INFO(result.dump());
  CHECK_FALSE(result.value("isError", false));
  CHECK(Outcomes(result) == std::vector<std::string>{"server_error", "server_error", "server_error", "ok"});
  CHECK(result["structuredContent"]["provider"] == "openrouter");
  server.CloseAndExpectCleanExit();
}

TEST_CASE("Keys on two endpoints share one pool; after a 5xx the other endpoint is tried", "[e2e][fallback]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  // Two "resellers" of one API: the mock serves any path prefix, so each endpoint is a prefix.
  const std::string ep1 = rig.mock.BaseUrl("/ep1/v1");
  const std::string ep2 = rig.mock.BaseUrl("/ep2/v1");
  ProviderSpec p = MockProvider(rig.mock, "openai", "openai", "gpt-mock", {}, kFastFailover);
  p.keys = {"{ key: " + kCanary1 + ", name: first }", "{ key: " + kCanary2 + ", name: second }",
            "{ key: " + kCanary3 + ", name: reseller, baseUrl: \"" + ep2 + "\" }"};
  p.base_url = ep1;
  rig.mock.Script(kCanary1, {"503"});
  E2eServer& server = rig.Start({p});
  Json result = server.Complete();
  INFO(result.dump());
  CHECK_FALSE(result.value("isError", false));
  CHECK(Outcomes(result) == std::vector<std::string>{"server_error", "ok"});
  Json requests = rig.mock.Requests();
  REQUIRE(requests.size() == 2);
  CHECK(Contains(requests[0]["path"].get<std::string>(), "/ep1/v1/"));
  CHECK(Contains(requests[1]["path"].get<std::string>(), "/ep2/v1/"));  // not "second" on ep1
  CHECK(rig.mock.KeysSeen() == std::vector<std::string>{"1111", "3333"});

  // Each key reaches its own endpoint.
  Json named = server.Complete({{"prompt", "hi"}});
  requests = rig.mock.Requests();
  REQUIRE(requests.size() == 3);
  CHECK(Contains(requests[2]["path"].get<std::string>(), "/ep1/v1/"));
  auto keys = server.KeyStatus();
  CHECK(keys["first"]["endpoint"] == "127.0.0.1:" + std::to_string(rig.mock.port()));
  CHECK(keys["reseller"]["endpoint"] == "127.0.0.1:" + std::to_string(rig.mock.port()));
  server.CloseAndExpectCleanExit();
}

TEST_CASE("The config from the original request, with no model, answers its first call", "[e2e][fallback]") {
  MockProcess mock(MockBinary());
  // SPEC §2's example, verbatim but for the base URLs (here: the mock).
  const std::string config = R"({
  "mcp": {
    "openai":     { "type": "openai",     "apiKey": [")" + kCanary1 + R"(", ")" + kCanary2 + R"("], "baseUrl": ")" +
                             mock.BaseUrlFor("openai") + R"(" },
    "openrouter": { "type": "openrouter", "apiKey": ["$OR_KEY_1", "$OR_KEY_2"],  "baseUrl": ")" +
                             mock.BaseUrlFor("openrouter") + R"(" }
  }
})";
  ServerLaunch launch;
  launch.config_name = "config.json";
  launch.env = {{"OR_KEY_1", kCanary3}, {"OR_KEY_2", kCanary2 + "x"}};
  launch.secrets = {kCanary1, kCanary2, kCanary3};
  E2eServer server(KeypoolBinary(), config, launch);
  server.Initialize();
  for (const std::string provider : {"openai", "openrouter"}) {
    Json result = server.Complete({{"prompt", "hi"}, {"provider", provider}});
    INFO(provider << ": " << result.dump());
    CHECK_FALSE(result.value("isError", false));
    CHECK_FALSE(result["structuredContent"]["model"].get<std::string>().empty());
  }
  Json requests = mock.Requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0]["model"] == "gpt-4o-mini");
  CHECK(requests[1]["model"] == "openrouter/auto");
  server.CloseAndExpectCleanExit();
}

TEST_CASE("openai-compatible without a model asks its server's /models", "[e2e][fallback]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  ProviderSpec local = MockProvider(rig.mock, "local", "openai-compatible", "", {kCanary1});
  local.base_url = rig.mock.BaseUrl("/v1");
  SECTION("one model listed: it is used") {
    rig.mock.ScriptJson(kCanary1, Json::array({Json::parse(
        R"({"status": 200, "body": "{\"object\":\"list\",\"data\":[{\"id\":\"llama-3-8b\",\"object\":\"model\"}]}"})")}));
    E2eServer& server = rig.Start({local});
    Json result = server.Complete();
    INFO(result.dump());
    CHECK_FALSE(result.value("isError", false));
    Json requests = rig.mock.Requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[0]["method"] == "GET");
    CHECK(requests[1]["model"] == "llama-3-8b");
    // Asked once: the second call goes straight to the completion.
    server.Complete();
    CHECK(rig.mock.Requests().size() == 3);
    server.CloseAndExpectCleanExit();
  }
  SECTION("two models listed: isError naming both") {
    rig.mock.ScriptJson(kCanary1, Json::array({Json::parse(
        R"({"status": 200, "body": "{\"object\":\"list\",\"data\":[{\"id\":\"llama-3-8b\"},{\"id\":\"qwen2-7b\"}]}"})")}));
    E2eServer& server = rig.Start({local});
    Json result = server.Complete();
    INFO(result.dump());
    CHECK(result["isError"] == true);
    CHECK(Contains(ResultText(result), "llama-3-8b"));
    CHECK(Contains(ResultText(result), "qwen2-7b"));
    server.CloseAndExpectCleanExit();
  }
}

}  // namespace
}  // namespace kpm::testing
