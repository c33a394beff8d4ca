// End to end failover: the built keypool-mcp binary against the mock-upstream binary.
// One case per row of SPEC §3: key 1 is scripted to fail in that row's way, and the
// test checks what the agent sees (result, attempts), what the upstream saw (which
// keys, in which order) and where the pool stands afterwards (key_status).
// Tagged [failover] so they can be run on their own: kpm_tests "[failover]".

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/e2e_fixture.h"

namespace kpm::testing {
namespace {

const std::string& kKey1 = kCanary1;
const std::vector<std::string>& kKeys = kCanaries;

/// Knobs of one harness: the provider type and extra YAML lines under `failover:`/the
/// provider.
struct HarnessOptions {
  std::string type = "openai";         ///< openai or openrouter (picks the mock flavor)
  std::string provider_extra;          ///< more YAML lines at provider level (4 spaces)
  std::string log_level = "debug";
};

/// mock-upstream + keypool-mcp configured with three keys (the canaries) pointing at it.
class Harness {
 public:
  explicit Harness(const HarnessOptions& options = {})
      : provider_(options.type),
        mock_(MockBinary()),
        server_(KeypoolBinary(),
                ConfigYaml({{options.type, options.type, mock_.BaseUrlFor(options.type), "gpt-mock", kKeys,
                             "    deadlineMs: 8000\n" + options.provider_extra +
                                 "    failover:\n"
                                 "      backoffMs: 1\n"}}),
                ServerLaunch{"config.yaml", {"--log-level", options.log_level}, {}, {}, kKeys}) {
    server_.Initialize();
  }

  const std::string& provider() const { return provider_; }
  std::string Label(int n) const { return provider_ + "#" + std::to_string(n); }

  /// Queues `steps` for `key` on the mock.
  void Script(const std::string& key, const std::vector<std::string>& steps) { mock_.Script(key, steps); }
  /// Last four characters of the key of every completion request the mock saw, in order.
  std::vector<std::string> KeysSeen() { return mock_.KeysSeen(); }
  /// tools/call complete; returns the result object (requires a result, not an error).
  Json Complete(const Json& arguments = {{"prompt", "hi"}}) { return server_.Complete(arguments); }

  /// key_status keys by label.
  std::map<std::string, Json> Keys() {
    auto keys = server_.KeyStatus();
    REQUIRE(keys.size() == 3);
    return keys;
  }

  /// Closes stdin; the server must exit 0, every line must be JSON-RPC, and no canary
  /// may appear on its stdout, its stderr or in a tool result.
  void FinishClean() { server_.CloseAndExpectCleanExit(); }

 private:
  std::string provider_;
  MockProcess mock_;
  E2eServer server_;
};

/// One row of SPEC §3 as seen end to end.
struct Row {
  const char* name;
  HarnessOptions options;
  std::vector<std::string> key1_steps;
  bool call_succeeds;                   ///< else isError with the upstream's message
  std::vector<std::string> outcomes;    ///< structuredContent.attempts[].outcome
  std::vector<std::string> keys_seen;   ///< last 4 of each key the mock saw, in order
  std::string key1_state;               ///< key_status of key 1 afterwards
  std::string error_text;               ///< for failures: part of the upstream message
  int64_t max_ready_in_ms = 0;          ///< cooling rows: ready_in_ms at most this
  int64_t min_ready_in_ms = 0;          ///< cooling rows: ready_in_ms at least this
  std::string reason_part;              ///< part of key 1's reason, when it has one
};

std::vector<Row> Rows() {
  HarnessOptions openai;
  HarnessOptions openrouter;
  openrouter.type = "openrouter";
  HarnessOptions fast_timeout;
  fast_timeout.provider_extra = "    firstByteTimeoutMs: 300\n";
  const std::vector<std::string> k1k2 = {"1111", "2222"};
  const std::vector<std::string> k1 = {"1111"};
  return {
      {"no failure: key 1 answers", openai, {}, true, {"ok"}, k1, "ready", "", 0, 0, ""},
      {"429 with Retry-After cools key 1 for that long and key 2 answers", openai,
       {"429:retry-after=2"}, true, {"rate_limited", "ok"}, k1k2, "cooling_down", "", 2500, 1, ""},
      {"insufficient_quota cools key 1 for quotaCooldownMs and key 2 answers", openai,
       {"insufficient_quota"}, true, {"quota_exhausted", "ok"}, k1k2, "cooling_down", "",
       3600000, 3500000, "quota"},
      {"OpenRouter 402 is quota_exhausted and key 2 answers", openrouter, {"402"}, true,
       {"quota_exhausted", "ok"}, k1k2, "cooling_down", "", 3600000, 3500000, "quota"},
      {"401 disables key 1 and key 2 answers", openai, {"401"}, true, {"auth_error", "ok"}, k1k2,
       "disabled", "", 0, 0, ""},
      {"500 once moves on to key 2 after the backoff and leaves key 1 ready", openai, {"500"},
       true, {"server_error", "ok"}, k1k2, "ready", "", 0, 0, ""},
      {"a dropped connection is network_error, cools key 1, key 2 answers", openai, {"drop"},
       true, {"network_error", "ok"}, k1k2, "cooling_down", "", 5000, 1, ""},
      {"a cut stream is never returned: server_error, key 2 answers from scratch", openai,
       {"cut"}, true, {"server_error", "ok"}, k1k2, "ready", "", 0, 0, ""},
      {"no headers within firstByteTimeoutMs is timeout, cools key 1, key 2 answers",
       fast_timeout, {"hang:5000"}, true, {"timeout", "ok"}, k1k2, "cooling_down", "", 5000, 1,
       ""},
      {"context_length_exceeded tries no other key and returns the upstream message", openai,
       {"context_length"}, false, {"context_too_long"}, k1, "ready", "maximum context length",
       0, 0, ""},
      {"400 is bad_request: no failover, the upstream message at once", openai, {"400"}, false,
       {"bad_request"}, k1, "ready", "Invalid value for 'messages'", 0, 0, ""},
  };
}

TEST_CASE("each failure class of SPEC §3 is handled end to end", "[e2e][failover]") {
  for (const Row& row : Rows()) {
    DYNAMIC_SECTION(row.name) {
      Harness h(row.options);
      if (!row.key1_steps.empty()) h.Script(kKey1, row.key1_steps);

      Json result = h.Complete();
      INFO(result.dump());
      if (row.call_succeeds) {
        CHECK_FALSE(result.value("isError", false));
        std::string text = ResultText(result);
        CHECK(text == "Hello from the mock upstream.");
        CHECK(result["structuredContent"]["text"] == text);
        std::string answered_by = result["structuredContent"].value("key", "");
        CHECK(answered_by.find(row.keys_seen.back() == "1111" ? h.Label(1) : h.Label(2)) !=
              std::string::npos);
      } else {
        CHECK(result["isError"] == true);
        CHECK(ResultText(result).find(row.error_text) != std::string::npos);
      }
      CHECK(Outcomes(result) == row.outcomes);
      CHECK(h.KeysSeen() == row.keys_seen);

      auto keys = h.Keys();
      const Json& key1 = keys[h.Label(1)];
      INFO("key 1: " << key1.dump());
      CHECK(key1["state"] == row.key1_state);
      if (row.max_ready_in_ms > 0) {
        REQUIRE(key1["ready_in_ms"].is_number());
        CHECK(key1["ready_in_ms"].get<int64_t>() <= row.max_ready_in_ms);
        CHECK(key1["ready_in_ms"].get<int64_t>() >= row.min_ready_in_ms);
      }
      if (!row.reason_part.empty()) {
        CHECK(key1.value("reason", "").find(row.reason_part) != std::string::npos);
      }
      if (row.call_succeeds && row.keys_seen.size() == 2) {
        CHECK(keys[h.Label(2)]["state"] == "ready");
      }
      CHECK(keys[h.Label(3)]["state"] == "ready");
      CHECK(keys[h.Label(3)]["requests"] == 0);
      h.FinishClean();
    }
  }
}

TEST_CASE("a key whose 5xx repeats across consecutive calls cools down", "[e2e][failover]") {
  Harness h;
  h.Script(kKey1, {"500", "500"});
  Json first = h.Complete();
  CHECK_FALSE(first.value("isError", false));
  CHECK(h.Keys()[h.Label(1)]["state"] == "ready");
  Json second = h.Complete();
  CHECK_FALSE(second.value("isError", false));
  CHECK(Outcomes(second) == std::vector<std::string>{"server_error", "ok"});
  CHECK(h.Keys()[h.Label(1)]["state"] == "cooling_down");
  CHECK(h.KeysSeen() == std::vector<std::string>{"1111", "2222", "1111", "2222"});
  h.FinishClean();
}

TEST_CASE("a rate-limited key is not probed again while it cools", "[e2e][failover]") {
  Harness h;
  h.Script(kKey1, {"429:retry-after=30"});
  CHECK(Outcomes(h.Complete()) == std::vector<std::string>{"rate_limited", "ok"});
  CHECK(Outcomes(h.Complete()) == std::vector<std::string>{"ok"});
  CHECK(h.KeysSeen() == std::vector<std::string>{"1111", "2222", "2222"});
  h.FinishClean();
}

TEST_CASE("when every key is revoked the error lists each key with its state",
          "[e2e][failover]") {
  Harness h;
  for (const auto& k : kKeys) h.Script(k, {"401"});
  Json result = h.Complete();
  INFO(result.dump());
  CHECK(result["isError"] == true);
  std::string text = ResultText(result);
  for (int n = 1; n <= 3; ++n) CHECK(text.find(h.Label(n)) != std::string::npos);
  for (const char* last4 : {"1111", "2222", "3333"}) {
    CHECK(text.find(std::string("\xE2\x80\xA6") + last4) != std::string::npos);  // "…1111"
  }
  CHECK(text.find("disabled") != std::string::npos);
  CHECK(Outcomes(result) == std::vector<std::string>{"auth_error", "auth_error", "auth_error"});
  CHECK(h.KeysSeen() == std::vector<std::string>{"1111", "2222", "3333"});
  auto keys = h.Keys();
  for (int n = 1; n <= 3; ++n) CHECK(keys[h.Label(n)]["state"] == "disabled");
  h.FinishClean();
}

TEST_CASE("an upstream that echoes the key in its error body and a URL leaks nothing",
          "[e2e][failover]") {
  for (const char* type : {"openai", "openrouter"}) {
    DYNAMIC_SECTION(type) {
      HarnessOptions options;
      options.type = type;
      options.log_level = "trace";  // the most talkative level must hide keys too
      Harness h(options);
      SECTION("key 1 echoes, key 2 answers") {
        h.Script(kKey1, {"echo_key"});
        Json result = h.Complete();
        CHECK_FALSE(result.value("isError", false));
        CHECK(Outcomes(result) == std::vector<std::string>{"auth_error", "ok"});
      }
      SECTION("every key echoes: the exhaustion report quotes scrubbed messages") {
        for (const auto& k : kKeys) h.Script(k, {"echo_key"});
        Json result = h.Complete();
        CHECK(result["isError"] == true);
        CHECK(Outcomes(result) == std::vector<std::string>{"auth_error", "auth_error", "auth_error"});
      }
      auto keys = h.Keys();
      CHECK(keys[h.Label(1)]["state"] == "disabled");
      h.FinishClean();  // no canary on stdout, stderr or in any result
    }
  }
}

}  // namespace
}  // namespace kpm::testing
