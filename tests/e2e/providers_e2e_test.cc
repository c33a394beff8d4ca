// End to end, the main rows of SPEC §3 for the Anthropic, Gemini and OpenRouter APIs
// (the OpenAI rows are in failover_e2e_test.cc): the built keypool-mcp binary against the
// mock-upstream program speaking each API's own error bodies and streams
// (docs/mock-upstream.md, PROVIDERS.md). Key 1 fails in the row's way; the test checks
// what the agent sees, which keys the upstream saw in which order, and key 1's state.

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/e2e_fixture.h"

namespace kpm::testing {
namespace {

constexpr const char* kAnswer = "Hello from the mock upstream.";
constexpr int64_t kQuotaCooldownMs = 3600000;  // SPEC §2 default quotaCooldownMs

struct Api {
  const char* type;
  const char* model;
};

/// One row of SPEC §3 for one API.
struct Row {
  const char* name;
  std::vector<std::string> key1_steps;
  std::vector<std::string> outcomes;  ///< structuredContent.attempts[].outcome
  std::string key1_state;             ///< "" = not checked (a 1 s cooldown may be over)
  int64_t min_ready_in_ms = 0;        ///< cooling rows: bounds of key 1's ready_in_ms
  int64_t max_ready_in_ms = 0;
  std::string reason_part;  ///< part of key 1's reason
};

Row MakeRow(const char* name, std::vector<std::string> steps, std::vector<std::string> outcomes,
            std::string key1_state, int64_t min_ready_in_ms = 0, int64_t max_ready_in_ms = 0,
            std::string reason_part = "") {
  return Row{name,
             std::move(steps),
             std::move(outcomes),
             std::move(key1_state),
             min_ready_in_ms,
             max_ready_in_ms,
             std::move(reason_part)};
}

const Row kOk = MakeRow("ok answers the text from key 1", {}, {"ok"}, "ready");
const Row k429 = MakeRow("429 is rate_limited and key 2 answers", {"429"}, {"rate_limited", "ok"}, "");
const Row k429Hint = MakeRow("429 with a retry hint cools key 1 for that long and key 2 answers",
                             {"429:retry-after=30"}, {"rate_limited", "ok"}, "cooling_down", 20000, 30000);
const Row k401 = MakeRow("a revoked key is auth_error, disabled, and key 2 answers", {"401"},
                         {"auth_error", "ok"}, "disabled");
const Row kCut = MakeRow("a cut stream is server_error and key 2 answers from scratch", {"cut"},
                         {"server_error", "ok"}, "ready");
const Row kInband = MakeRow("an in-band error after a good start is server_error, never a cut success",
                            {"inband_error"}, {"server_error", "ok"}, "ready");
const Row kInband429 =
    MakeRow("an in-band rate-limit error is rate_limited", {"inband_error:429"}, {"rate_limited", "ok"}, "");
Row Quota(const char* name, const char* step) {
  return MakeRow(name, {step}, {"quota_exhausted", "ok"}, "cooling_down", kQuotaCooldownMs - 100000,
                 kQuotaCooldownMs, "quota");
}

std::vector<std::pair<Api, std::vector<Row>>> Table() {
  return {
      {{"anthropic", "claude-mock-1"},
       {kOk, k429, k429Hint,
        Quota("400 \"credit balance is too low\" is quota_exhausted", "insufficient_quota"),
        Quota("402 billing_error is quota_exhausted", "402"), k401,
        MakeRow("529 overloaded is server_error, key 1 stays ready, key 2 answers", {"529"},
                {"server_error", "ok"}, "ready"),
        kInband, kInband429, kCut}},
      {{"gemini", "gemini-mock"},
       {kOk, k429, k429Hint,
        Quota("a PerDay quota violation is quota_exhausted, whatever its retryDelay says",
              "insufficient_quota"),
        k401,
        MakeRow("503 UNAVAILABLE is server_error and key 2 answers", {"503"}, {"server_error", "ok"},
                "ready"),
        kInband, kInband429, kCut}},
      {{"openrouter", "mock/model-1"},
       {kOk, k429, k429Hint, Quota("402 out of credits is quota_exhausted", "402"),
        Quota("429 free-models-per-day is quota_exhausted", "insufficient_quota"), k401,
        MakeRow("502 provider_unavailable is server_error and key 2 answers", {"502"}, {"server_error", "ok"},
                "ready"),
        kInband, kInband429, kCut}},
  };
}

/// The request is the API's own completion call (SPEC §6).
void CheckCompletionRequest(const Api& api, const Json& r) {
  INFO(r.dump());
  CHECK(r["method"] == "POST");
  CHECK(r["flavor"] == api.type);
  CHECK(r["model"] == api.model);
  CHECK(r["key_in_query"] == false);
  const std::string path = r.value("path", "");
  const std::string type = api.type;
  if (type == "anthropic") {
    CHECK(path == "/v1/messages");
    CHECK(r["headers"].value("anthropic-version", "") == "2023-06-01");
  } else if (type == "gemini") {
    CHECK(path == std::string("/v1beta/models/") + api.model + ":streamGenerateContent");
  } else {
    CHECK(path == "/api/v1/chat/completions");
  }
}

TEST_CASE("each main failure class of SPEC §3 is handled end to end for Anthropic, Gemini and OpenRouter",
          "[e2e][providers]") {
  for (const auto& [api, rows] : Table()) {
    for (const Row& row : rows) {
      DYNAMIC_SECTION(api.type << ": " << row.name) {
        E2eRig rig(KeypoolBinary(), MockBinary());
        if (!row.key1_steps.empty()) rig.mock.Script(kCanary1, row.key1_steps);
        const std::string provider = api.type;
        E2eServer& server = rig.Start(
            {MockProvider(rig.mock, provider, api.type, api.model, {kCanary1, kCanary2, kCanary3})});

        Json result = server.Complete();
        INFO(result.dump());
        CHECK_FALSE(result.value("isError", false));
        CHECK(ResultText(result) == kAnswer);
        const Json& sc = result["structuredContent"];
        CHECK(sc["text"] == kAnswer);
        CHECK(sc["provider"] == provider);
        CHECK(sc["model"] == api.model);
        CHECK_FALSE(sc.value("finish_reason", "").empty());
        CHECK(sc["usage"]["output_tokens"].get<int64_t>() > 0);
        CHECK(Outcomes(result) == row.outcomes);
        const bool failed_over = row.outcomes.size() == 2;
        CHECK(sc.value("key", "").find(provider + (failed_over ? "#2" : "#1")) != std::string::npos);

        const std::vector<std::string> expected_keys =
            failed_over ? std::vector<std::string>{"1111", "2222"} : std::vector<std::string>{"1111"};
        CHECK(rig.mock.KeysSeen() == expected_keys);
        for (const auto& r : rig.mock.Requests()) CheckCompletionRequest(api, r);

        auto keys = server.KeyStatus();
        const Json& key1 = keys[provider + "#1"];
        INFO("key 1: " << key1.dump());
        if (!row.key1_state.empty()) CHECK(key1["state"] == row.key1_state);
        if (row.max_ready_in_ms > 0) {
          REQUIRE(key1["ready_in_ms"].is_number_integer());
          CHECK(key1["ready_in_ms"].get<int64_t>() <= row.max_ready_in_ms);
          CHECK(key1["ready_in_ms"].get<int64_t>() >= row.min_ready_in_ms);
        }
        if (!row.reason_part.empty()) {
          CHECK(key1.value("reason", "").find(row.reason_part) != std::string::npos);
        }
        CHECK(key1["requests"] == 1);
        if (failed_over) CHECK(keys[provider + "#2"]["state"] == "ready");
        CHECK(keys[provider + "#3"]["requests"] == 0);
        server.CloseAndExpectCleanExit();
      }
    }
  }
}

TEST_CASE("Anthropic, Gemini and OpenRouter: every key revoked lists them all and no answer is made up",
          "[e2e][providers]") {
  for (const Api& api :
       {Api{"anthropic", "claude-mock-1"}, Api{"gemini", "gemini-mock"}, Api{"openrouter", "mock/model-1"}}) {
    DYNAMIC_SECTION(api.type) {
      E2eRig rig(KeypoolBinary(), MockBinary());
      for (const auto& k : kCanaries) rig.mock.Script(k, {"401"});
      const std::string provider = api.type;
      E2eServer& server =
          rig.Start({MockProvider(rig.mock, provider, api.type, api.model, {kCanary1, kCanary2, kCanary3})});
      Json result = server.Complete();
      INFO(result.dump());
      CHECK(result["isError"] == true);
      const std::string text = ResultText(result);
      for (int n = 1; n <= 3; ++n) CHECK(text.find(provider + "#" + std::to_string(n)) != std::string::npos);
      CHECK(Outcomes(result) == std::vector<std::string>{"auth_error", "auth_error", "auth_error"});
      CHECK(result["structuredContent"]["error"]["class"] == "auth_error");
      CHECK(rig.mock.KeysSeen() == std::vector<std::string>{"1111", "2222", "3333"});
      auto keys = server.KeyStatus();
      for (int n = 1; n <= 3; ++n) CHECK(keys[provider + "#" + std::to_string(n)]["state"] == "disabled");
      server.CloseAndExpectCleanExit();
    }
  }
}

}  // namespace
}  // namespace kpm::testing
