// End to end failover: the built keypool-mcp binary against the mock-upstream binary.
// One case per row of SPEC §3: key 1 is scripted to fail in that row's way, and the
// test checks what the agent sees (result, attempts), what the upstream saw (which
// keys, in which order) and where the pool stands afterwards (key_status).
// Tagged [failover] so they can be run on their own: kpm_tests "[failover]".

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <httplib.h>

#include "tests/support/stdio_driver.h"

namespace kpm::testing {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kReadTimeout(10000);
constexpr milliseconds kExitTimeout(5000);

// Canary keys (SPEC §4), told apart by their last four characters.
const std::string kKey1 = "sk-canary-Ka7Qz2XwLp9Rt4VbNcAA1111";
const std::string kKey2 = "sk-canary-Mb3Wy8UvJq5Ps1TdHeBB2222";
const std::string kKey3 = "sk-canary-Pc5Xz1RsTk8Lm2QwJfCC3333";
const std::vector<std::string> kKeys = {kKey1, kKey2, kKey3};

std::string MockPath() {
  std::string path = KPM_MOCK_PATH;
  if (path.empty() || !std::filesystem::exists(path)) {
    FAIL("mock-upstream binary not built (KPM_MOCK_PATH='"
         << path << "'): the failover end-to-end tests need tests/support/mock_upstream_main.cc");
  }
  return path;
}

std::string BinaryPath() {
  std::string path = KPM_BINARY_PATH;
  INFO("keypool-mcp binary: " << path);
  REQUIRE(std::filesystem::exists(path));
  return path;
}

/// Knobs of one harness: the provider type and extra YAML lines under `failover:`/the
/// provider.
struct HarnessOptions {
  std::string type = "openai";         ///< openai or openrouter (picks the mock flavor)
  std::string provider_extra;          ///< more YAML lines at provider level (4 spaces)
  std::string log_level = "debug";
};

/// mock-upstream + keypool-mcp configured with three openai keys pointing at it.
class Harness {
 public:
  explicit Harness(const HarnessOptions& options = {}) {
    StartMock();
    const std::string prefix = options.type == "openrouter" ? "/api/v1" : "/v1";
    std::string yaml = "providers:\n"
                       "  " + options.type + ":\n"
                       "    type: " + options.type + "\n"
                       "    baseUrl: http://127.0.0.1:" + std::to_string(port_) + prefix + "\n"
                       "    model: gpt-mock\n"
                       "    apiKey:\n";
    for (const auto& k : kKeys) yaml += "      - " + k + "\n";
    yaml += "    deadlineMs: 8000\n" + options.provider_extra +
            "    failover:\n"
            "      backoffMs: 1\n";
    provider_ = options.type;
    std::string config = dir_.WriteFile("config.yaml", yaml);
    auto spawned = StdioProcess::Spawn(ServerOptions(
        BinaryPath(), {"--config", config, "--log-level", options.log_level}, dir_.path()));
    if (!spawned.has_value()) FAIL("cannot start keypool-mcp: " << spawned.error().message);
    server_ = std::move(spawned).value();
    session_ = std::make_unique<McpSession>(*server_);
    auto init = session_->Initialize("2025-06-18", kReadTimeout);
    INFO("stderr: " << server_->Stderr());
    REQUIRE(init.has_value());
    REQUIRE(init->contains("result"));
  }

  const std::string& provider() const { return provider_; }
  std::string Label(int n) const { return provider_ + "#" + std::to_string(n); }

  /// Queues `steps` for `key` on the mock (POST /_mock/script).
  void Script(const std::string& key, const std::vector<std::string>& steps) {
    Json body = {{"key", key}, {"steps", steps}};
    auto res = control_->Post("/_mock/script", body.dump(), "application/json");
    REQUIRE(res);
    INFO(res->body);
    REQUIRE(res->status == 200);
  }

  /// The last four characters of the key of every completion request the mock saw,
  /// in order (the mock records fingerprints, never keys).
  std::vector<std::string> KeysSeen() {
    auto res = control_->Get("/_mock/requests");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    Json requests = Json::parse(res->body, nullptr, false);
    REQUIRE(requests.is_array());
    std::vector<std::string> seen;
    for (const auto& r : requests) {
      std::string path = r.value("path", "");
      if (path.size() < 17 || path.substr(path.size() - 17) != "/chat/completions") continue;
      std::string fp = r.value("key_fingerprint", "");
      seen.push_back(fp.size() >= 4 ? fp.substr(fp.size() - 4) : fp);
    }
    return seen;
  }

  /// tools/call complete; returns the result object (requires a result, not an error).
  Json Complete(const Json& arguments = {{"prompt", "hi"}}) {
    auto reply = session_->CallTool("complete", arguments, kReadTimeout);
    REQUIRE(reply.has_value());
    INFO(reply->dump());
    REQUIRE(reply->contains("result"));
    results_ += reply->dump();
    return (*reply)["result"];
  }

  /// key_status keys by label.
  std::map<std::string, Json> Keys() {
    auto reply = session_->CallTool("key_status", Json::object(), kReadTimeout);
    REQUIRE(reply.has_value());
    INFO(reply->dump());
    REQUIRE(reply->contains("result"));
    results_ += reply->dump();
    std::map<std::string, Json> keys;
    for (const auto& p : (*reply)["result"]["structuredContent"]["providers"]) {
      for (const auto& k : p["keys"]) keys[k.value("label", "")] = k;
    }
    REQUIRE(keys.size() == 3);
    return keys;
  }

  /// Closes stdin; the server must exit 0, every line must be JSON-RPC, and no canary
  /// may appear on its stdout or stderr.
  void FinishClean() {
    server_->CloseStdin();
    session_->DrainUntilEof(kExitTimeout);
    CHECK(server_->WaitExit(kExitTimeout) == std::optional<int>(0));
    INFO("stderr:\n" << server_->Stderr());
    for (const auto& bad : session_->bad_lines()) FAIL_CHECK("not JSON-RPC 2.0: " << bad);
    auto out = FindSecret(server_->StdoutSoFar(), kKeys);
    if (out) FAIL_CHECK("key material on stdout: " << *out);
    auto err = FindSecret(server_->Stderr(), kKeys);
    if (err) FAIL_CHECK("key material on stderr: " << *err);
    auto res = FindSecret(results_, kKeys);
    if (res) FAIL_CHECK("key material in a tool result: " << *res);
  }

 private:
  void StartMock() {
    auto spawned = StdioProcess::Spawn({{MockPath(), "--exit-on-stdin-eof"}, {}, {}});
    if (!spawned.has_value()) FAIL("cannot start mock-upstream: " << spawned.error().message);
    mock_ = std::move(spawned).value();
    auto line = mock_->ReadLine(kReadTimeout);
    INFO("mock stderr: " << mock_->Stderr());
    REQUIRE(line.has_value());
    Json port_line = Json::parse(*line, nullptr, false);
    INFO("mock said: " << *line);
    REQUIRE(port_line.is_object());
    REQUIRE(port_line["port"].is_number_integer());
    port_ = port_line["port"].get<int>();
    REQUIRE(port_ > 0);
    control_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    control_->set_connection_timeout(5, 0);
    control_->set_read_timeout(10, 0);
  }

  TempDir dir_;
  std::unique_ptr<StdioProcess> mock_;
  int port_ = 0;
  std::unique_ptr<httplib::Client> control_;
  std::unique_ptr<StdioProcess> server_;
  std::unique_ptr<McpSession> session_;
  std::string provider_;
  std::string results_;  // every tool result seen, for the canary check
};

std::string Text(const Json& result) {
  INFO(result.dump());
  REQUIRE(result["content"].is_array());
  REQUIRE_FALSE(result["content"].empty());
  return result["content"][0].value("text", "");
}

std::vector<std::string> Outcomes(const Json& result) {
  INFO(result.dump());
  const Json& attempts = result["structuredContent"]["attempts"];
  REQUIRE(attempts.is_array());
  std::vector<std::string> out;
  for (const auto& a : attempts) out.push_back(a.value("outcome", ""));
  return out;
}

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
        std::string text = Text(result);
        CHECK(text == "Hello from the mock upstream.");
        CHECK(result["structuredContent"]["text"] == text);
        std::string answered_by = result["structuredContent"].value("key", "");
        CHECK(answered_by.find(row.keys_seen.back() == "1111" ? h.Label(1) : h.Label(2)) !=
              std::string::npos);
      } else {
        CHECK(result["isError"] == true);
        CHECK(Text(result).find(row.error_text) != std::string::npos);
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
  std::string text = Text(result);
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
