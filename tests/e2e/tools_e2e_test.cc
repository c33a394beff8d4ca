// End to end, the tools and flags around the failover loop: --check (SPEC §1), fallback
// chains, exhaustion reports, round-robin (§2, §3), cancellation and progress (§5),
// list_models through the pool and the start-up health check (§5). The built
// keypool-mcp binary against the mock-upstream program (tests/support/e2e_fixture.h).

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/e2e_fixture.h"

namespace kpm::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kUnsetVar = "KPM_TEST_UNSET_VAR";

bool Contains(std::string_view text, std::string_view needle) {
  return text.find(needle) != std::string_view::npos;
}

/// The first line of `text` that contains every one of `needles`, or "" when none does.
std::string LineWith(const std::string& text, const std::vector<std::string>& needles) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (std::all_of(needles.begin(), needles.end(),
                    [&](const std::string& n) { return Contains(line, n); })) {
      return line;
    }
  }
  return "";
}

/// "…1111": the tail of a key's fingerprint (SPEC §4: a short prefix, "…", the last 4).
std::string FingerprintTail(const std::string& key) { return std::string(kEllipsis) + Last4(key); }

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// --- --check -----------------------------------------------------------------------

TEST_CASE("the --check flag prints a table of every key and exits 0 only when each provider has a usable key",
          "[e2e][tools]") {
  MockProcess mock(MockBinary());
  TempDir home;
  auto run_check = [&](const std::string& yaml) {
    std::string config = home.WriteFile("config.yaml", yaml);
    return RunToExit(KeypoolBinary(), {"--check", "--config", config}, home, {}, {kUnsetVar});
  };
  auto check_no_leak = [](StdioProcess& p) {
    if (auto leak = FindSecret(p.StdoutSoFar(), kCanaries)) FAIL_CHECK("key material on stdout: " << *leak);
    if (auto leak = FindSecret(p.Stderr(), kCanaries)) FAIL_CHECK("key material on stderr: " << *leak);
  };

  SECTION("one good, one revoked, one unset variable: each state shown, exit 0") {
    mock.SetDefault(kCanary2, "401");
    auto p = run_check(ConfigYaml({MockProvider(mock, "openai", "openai", "gpt-mock",
                                                {kCanary1, kCanary2, std::string("$") + kUnsetVar})}));
    const std::string out = p->StdoutSoFar();
    INFO("stdout:\n" << out << "\nstderr:\n" << p->Stderr());
    CHECK(p->WaitExit(milliseconds(0)) == std::optional<int>(0));
    CHECK_FALSE(LineWith(out, {"openai#1", FingerprintTail(kCanary1), "ready"}).empty());
    CHECK_FALSE(LineWith(out, {"openai#2", FingerprintTail(kCanary2), "disabled"}).empty());
    CHECK_FALSE(LineWith(out, {"openai#3", "disabled", kUnsetVar}).empty());
    // The revoked key is disabled by its check, not left ready.
    CHECK(LineWith(out, {"openai#2", "ready"}).empty());
    // One cheap keyed request per key that has one (GET /models), no completion spent.
    CHECK(Sorted(mock.KeysSeenOn("/models")) == std::vector<std::string>{"1111", "2222"});
    CHECK(mock.KeysSeen().empty());
    check_no_leak(*p);
  }
  SECTION("every key revoked or unset: exit 1") {
    mock.SetDefault(kCanary1, "401");
    mock.SetDefault(kCanary2, "401");
    auto p = run_check(ConfigYaml({MockProvider(mock, "openai", "openai", "gpt-mock",
                                                {kCanary1, kCanary2, std::string("$") + kUnsetVar})}));
    const std::string out = p->StdoutSoFar();
    INFO("stdout:\n" << out << "\nstderr:\n" << p->Stderr());
    CHECK(p->WaitExit(milliseconds(0)) == std::optional<int>(1));
    CHECK_FALSE(LineWith(out, {"openai#1", FingerprintTail(kCanary1), "disabled"}).empty());
    CHECK_FALSE(LineWith(out, {"openai#2", FingerprintTail(kCanary2), "disabled"}).empty());
    CHECK_FALSE(LineWith(out, {"openai#3", "disabled", kUnsetVar}).empty());
    check_no_leak(*p);
  }
  SECTION("Anthropic, Gemini and OpenRouter keys are checked with each API's cheap keyed call") {
    mock.SetDefault(kCanary2, "401");
    auto p =
        run_check(ConfigYaml({MockProvider(mock, "an", "anthropic", "claude-mock-1", {kCanary1, kCanary2}),
                              MockProvider(mock, "ge", "gemini", "gemini-mock", {kCanary1, kCanary2}),
                              MockProvider(mock, "or", "openrouter", "mock/model-1", {kCanary1, kCanary2})}));
    const std::string out = p->StdoutSoFar();
    INFO("stdout:\n" << out << "\nstderr:\n" << p->Stderr());
    CHECK(p->WaitExit(milliseconds(0)) == std::optional<int>(0));
    for (const char* name : {"an", "ge", "or"}) {
      const std::string n = name;
      CHECK_FALSE(LineWith(out, {n + "#1", FingerprintTail(kCanary1), "ready"}).empty());
      CHECK_FALSE(LineWith(out, {n + "#2", FingerprintTail(kCanary2), "disabled"}).empty());
    }
    std::multiset<std::string> calls;  // "flavor path"
    for (const auto& r : mock.Requests()) {
      CHECK(r["method"] == "GET");
      CHECK(r["key_in_query"] == false);
      calls.insert(r.value("flavor", "") + " " + r.value("path", ""));
    }
    // SPEC §5: GET /models for Anthropic and Gemini, GET /key for OpenRouter (its
    // /models needs no key); one per key.
    CHECK(calls == std::multiset<std::string>{"anthropic /v1/models", "anthropic /v1/models",
                                              "gemini /v1beta/models", "gemini /v1beta/models",
                                              "openrouter /api/v1/key", "openrouter /api/v1/key"});
    check_no_leak(*p);
  }
  SECTION("a local server without apiKey is usable: exit 0, checked with no auth header") {
    ProviderSpec local = MockProvider(mock, "local", "openai-compatible", "llama", {});
    auto p = run_check(ConfigYaml({local}));
    const std::string out = p->StdoutSoFar();
    INFO("stdout:\n" << out << "\nstderr:\n" << p->Stderr());
    CHECK(p->WaitExit(milliseconds(0)) == std::optional<int>(0));
    CHECK_FALSE(LineWith(out, {"local", "ready"}).empty());
    Json requests = mock.Requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0]["path"] == "/v1/models");
    CHECK(requests[0]["key_fingerprint"] == "(no key)");
  }
  SECTION("keys whose check cannot reach the server are not verified: exit 1") {
    ProviderSpec down{"down", "openai", "http://127.0.0.1:9/v1", "gpt-mock", {kCanary1}, ""};
    auto p = run_check(ConfigYaml({down}));
    const std::string out = p->StdoutSoFar();
    INFO("stdout:\n" << out << "\nstderr:\n" << p->Stderr());
    CHECK(p->WaitExit(milliseconds(0)) == std::optional<int>(1));
    CHECK_FALSE(LineWith(out, {"down#1", "network_error"}).empty());
    CHECK_FALSE(LineWith(out, {"down", "no usable key"}).empty());
    check_no_leak(*p);
  }
  SECTION("one provider fine, another with no usable key: exit 1") {
    mock.SetDefault(kCanary2, "401");
    auto p = run_check(ConfigYaml({MockProvider(mock, "good", "openai", "gpt-mock", {kCanary1}),
                                   MockProvider(mock, "bad", "openai", "gpt-mock", {kCanary2})}));
    const std::string out = p->StdoutSoFar();
    INFO("stdout:\n" << out << "\nstderr:\n" << p->Stderr());
    CHECK(p->WaitExit(milliseconds(0)) == std::optional<int>(1));
    CHECK_FALSE(LineWith(out, {"good", "good#1", "ready"}).empty());
    CHECK_FALSE(LineWith(out, {"bad", "bad#1", "disabled"}).empty());
    check_no_leak(*p);
  }
}

// --- fallback ----------------------------------------------------------------------

TEST_CASE("an exhausted provider falls back to the next one, with its own keys and model", "[e2e][tools]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  E2eServer& server = rig.Start({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1, kCanary2}),
                                 MockProvider(rig.mock, "backup", "anthropic", "claude-mock-1", {kCanary3})},
                                "fallback: [backup]\n");

  SECTION("both openai keys fail (429, 401): backup answers") {
    rig.mock.Script(kCanary1, {"429"});
    rig.mock.Script(kCanary2, {"401"});
    Json result = server.Complete();
    INFO(result.dump());
    CHECK_FALSE(result.value("isError", false));
    CHECK(ResultText(result) == "Hello from the mock upstream.");
    const Json& sc = result["structuredContent"];
    CHECK(sc["provider"] == "backup");
    CHECK(sc["model"] == "claude-mock-1");
    CHECK(Contains(sc.value("key", ""), "backup#1"));
    CHECK(Outcomes(result) == std::vector<std::string>{"rate_limited", "auth_error", "ok"});
    REQUIRE(sc["attempts"].size() == 3);
    CHECK(sc["attempts"][0]["provider"] == "openai");
    CHECK(sc["attempts"][1]["provider"] == "openai");
    CHECK(sc["attempts"][2]["provider"] == "backup");
    CHECK(rig.mock.KeysSeen() == std::vector<std::string>{"1111", "2222", "3333"});
    Json requests = rig.mock.Requests();
    REQUIRE(requests.size() == 3);
    CHECK(requests[2]["flavor"] == "anthropic");
    CHECK(requests[2]["model"] == "claude-mock-1");
    auto keys = server.KeyStatus();
    CHECK(keys["openai#1"]["state"] == "cooling_down");
    CHECK(keys["openai#2"]["state"] == "disabled");
    CHECK(keys["backup#1"]["state"] == "ready");
    // SPEC §3 Logging: one info line per switch, naming both keys, the class and status.
    const std::string err = server.process().Stderr();
    INFO("stderr:\n" << err);
    CHECK_FALSE(
        LineWith(err, {"openai: openai#1 ", FingerprintTail(kCanary1), "rate_limited", "429", "openai#2"})
            .empty());
    CHECK_FALSE(LineWith(err, {"falling back to backup"}).empty());
  }
  SECTION("context_length on openai tries no other openai key and goes to the fallback") {
    rig.mock.Script(kCanary1, {"context_length"});
    Json result = server.Complete();
    INFO(result.dump());
    CHECK_FALSE(result.value("isError", false));
    CHECK(result["structuredContent"]["provider"] == "backup");
    CHECK(Outcomes(result) == std::vector<std::string>{"context_too_long", "ok"});
    CHECK(rig.mock.KeysSeen() == std::vector<std::string>{"1111", "3333"});
    auto keys = server.KeyStatus();
    CHECK(keys["openai#1"]["state"] == "ready");  // not the key's fault
    CHECK(keys["openai#2"]["requests"] == 0);
  }
  SECTION("a call that names its provider and model falls back too, with the fallback's model") {
    rig.mock.Script(kCanary1, {"401"});
    rig.mock.Script(kCanary2, {"401"});
    Json result = server.Complete({{"prompt", "hi"}, {"provider", "openai"}, {"model", "gpt-special"}});
    INFO(result.dump());
    CHECK_FALSE(result.value("isError", false));
    CHECK(result["structuredContent"]["provider"] == "backup");
    CHECK(result["structuredContent"]["model"] == "claude-mock-1");
    CHECK(rig.mock.KeysSeen() == std::vector<std::string>{"1111", "2222", "3333"});
    Json requests = rig.mock.Requests();
    REQUIRE(requests.size() == 3);
    CHECK(requests[0]["model"] == "gpt-special");
    CHECK(requests[1]["model"] == "gpt-special");
    CHECK(requests[2]["model"] == "claude-mock-1");
  }
  SECTION("when the fallback is exhausted too, the error lists the keys of both providers") {
    for (const auto& k : kCanaries) rig.mock.Script(k, {"401"});
    Json result = server.Complete();
    INFO(result.dump());
    CHECK(result["isError"] == true);
    const std::string text = ResultText(result);
    CHECK_FALSE(LineWith(text, {"openai#1", FingerprintTail(kCanary1), "disabled"}).empty());
    CHECK_FALSE(LineWith(text, {"openai#2", FingerprintTail(kCanary2), "disabled"}).empty());
    CHECK_FALSE(LineWith(text, {"backup#1", FingerprintTail(kCanary3), "disabled"}).empty());
    CHECK(Outcomes(result) == std::vector<std::string>{"auth_error", "auth_error", "auth_error"});
    const Json& attempts = result["structuredContent"]["attempts"];
    REQUIRE(attempts.size() == 3);
    CHECK(attempts[2]["provider"] == "backup");
    CHECK(result["structuredContent"]["keys"].size() == 2);
  }
  server.CloseAndExpectCleanExit();
}

// --- exhaustion --------------------------------------------------------------------

TEST_CASE("when every key is cooling the error lists each key with its state and when it is ready",
          "[e2e][tools]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  rig.mock.Script(kCanary1, {"429:retry-after=30"});
  rig.mock.Script(kCanary2, {"insufficient_quota"});
  rig.mock.Script(kCanary3, {"429:retry-after=90"});
  E2eServer& server =
      rig.Start({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1, kCanary2, kCanary3})});

  auto check_report = [&](const Json& result) {
    INFO(result.dump());
    CHECK(result["isError"] == true);
    const std::string text = ResultText(result);
    for (size_t n = 1; n <= kCanaries.size(); ++n) {
      const std::string label = "openai#" + std::to_string(n);
      INFO(label);
      std::string line = LineWith(text, {label, FingerprintTail(kCanaries[n - 1])});
      CHECK_FALSE(line.empty());
      CHECK(Contains(line, "cooling_down"));
      CHECK(Contains(line, "ready in"));
    }
    CHECK(Contains(LineWith(text, {"openai#2"}), "quota"));
    const Json& sc = result["structuredContent"];
    REQUIRE(sc.is_object());
    REQUIRE(sc["error"].is_object());
    CHECK(std::set<std::string>{"rate_limited", "quota_exhausted"}.count(sc["error"].value("class", "")) ==
          1);
    CHECK(sc["error"]["message"].is_string());
    REQUIRE(sc["keys"].is_array());
    auto keys = KeysByLabel({{"providers", sc["keys"]}});
    REQUIRE(keys.size() == 3);
    for (auto& [label, key] : keys) {
      INFO(label << ": " << key.dump());
      CHECK(key["state"] == "cooling_down");
      REQUIRE(key["ready_in_ms"].is_number_integer());
      CHECK(key["ready_in_ms"].get<int64_t>() > 0);
    }
    CHECK(keys["openai#1"]["ready_in_ms"].get<int64_t>() <= 30000);
    CHECK(keys["openai#3"]["ready_in_ms"].get<int64_t>() > 30000);
  };

  Json first = server.Complete();
  CHECK(Outcomes(first) == std::vector<std::string>{"rate_limited", "quota_exhausted", "rate_limited"});
  check_report(first);
  // A second call probes no cooling key (SPEC §3 probe discipline) and reports the same.
  Json second = server.Complete();
  CHECK(Outcomes(second).empty());
  check_report(second);
  CHECK(rig.mock.KeysSeen() == std::vector<std::string>{"1111", "2222", "3333"});
  server.CloseAndExpectCleanExit();
}

TEST_CASE("with maxWaitMs a call waits for the first cooling key instead of failing", "[e2e][tools]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  rig.mock.Script(kCanary1, {"429:retry-after=1"});
  rig.mock.Script(kCanary2, {"429:retry-after=1"});
  E2eServer& server = rig.Start({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1, kCanary2},
                                              "    deadlineMs: 8000\n"
                                              "    failover:\n"
                                              "      backoffMs: 1\n"
                                              "      maxWaitMs: 5000\n")});
  McpSession& session = server.session();
  auto id = session.Send(
      "tools/call",
      {{"name", "complete"}, {"arguments", {{"prompt", "hi"}}}, {"_meta", {{"progressToken", 7}}}});
  REQUIRE(id.has_value());
  auto reply = session.AwaitReply(*id, kReadTimeout);
  REQUIRE(reply.has_value());
  INFO(reply->dump());
  REQUIRE(reply->contains("result"));
  server.Remember(reply->dump());
  const Json& result = (*reply)["result"];
  CHECK_FALSE(result.value("isError", false));
  CHECK(ResultText(result) == "Hello from the mock upstream.");
  CHECK(Outcomes(result) == std::vector<std::string>{"rate_limited", "rate_limited", "ok"});
  std::vector<std::string> seen = rig.mock.KeysSeen();
  REQUIRE(seen.size() == 3);
  CHECK(seen[0] == "1111");
  CHECK(seen[1] == "2222");
  // The wait is announced as progress (SPEC §3 Exhaustion, §5 Progress).
  bool wait_announced = false;
  for (const auto& n : session.notifications()) {
    if (n.value("method", "") != "notifications/progress") continue;
    CHECK(n["params"]["progressToken"] == 7);
    wait_announced |= Contains(n["params"].value("message", ""), "wait");
  }
  CHECK(wait_announced);
  server.CloseAndExpectCleanExit();
}

TEST_CASE("a call waiting for a cooling key is cancelled at once and the server exits promptly",
          "[e2e][tools]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  rig.mock.Script(kCanary1, {"429:retry-after=30"});
  E2eServer& server = rig.Start({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1},
                                              "    deadlineMs: 60000\n"
                                              "    failover:\n"
                                              "      maxWaitMs: 45000\n")});
  McpSession& session = server.session();
  auto id = session.Send(
      "tools/call",
      {{"name", "complete"}, {"arguments", {{"prompt", "hi"}}}, {"_meta", {{"progressToken", "wait-1"}}}});
  REQUIRE(id.has_value());
  // Wait until the call announces that it waits for the key.
  bool waiting = false;
  const auto deadline = Clock::now() + kReadTimeout;
  while (!waiting && Clock::now() < deadline) {
    auto m = session.ReadMessage(milliseconds(500));
    if (!m) continue;
    if (m->value("method", "") == "notifications/progress") {
      waiting = Contains((*m)["params"].value("message", ""), "wait");
    }
    if (!m->contains("method")) FAIL("the call ended instead of waiting: " << m->dump());
  }
  REQUIRE(waiting);
  REQUIRE(session.Notify("notifications/cancelled", {{"requestId", *id}}));
  auto reply = session.AwaitReply(*id, milliseconds(1000));
  if (reply) FAIL_CHECK("a reply to a cancelled call: " << reply->dump());
  auto ping = session.Request("ping", nullptr, kReadTimeout);
  REQUIRE(ping.has_value());
  CHECK(ping->contains("result"));
  CHECK(rig.mock.KeysSeen() == std::vector<std::string>{"1111"});
  // Nothing is left waiting: stdin EOF ends the server well before the key is back.
  server.CloseAndExpectCleanExit();
}

TEST_CASE("check_keys revives a revoked key whose check passes but not a quota-cooled one", "[e2e][tools]") {
  struct Variant {
    const char* name;
    std::string step;
    std::string failed_class;
    std::string state_after_check;
  };
  for (const Variant& v :
       {Variant{"revoked, then the check passes: ready", "401", "auth_error", "ready"},
        Variant{"out of quota, then the check passes: still cooling (OpenAI's check shows no credit)",
                "insufficient_quota", "quota_exhausted", "cooling_down"}}) {
    DYNAMIC_SECTION(v.name) {
      const std::string& step = v.step;
      const std::string& failed_class = v.failed_class;
      const std::string& state_after_check = v.state_after_check;
      E2eRig rig(KeypoolBinary(), MockBinary());
      rig.mock.Script(kCanary1, {step});
      E2eServer& server =
          rig.Start({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1, kCanary2})});
      CHECK(Outcomes(server.Complete()) == std::vector<std::string>{failed_class, "ok"});
      CHECK(server.KeyStatus()["openai#1"]["state"] == (step == "401" ? "disabled" : "cooling_down"));

      Json checked = server.CallTool("check_keys", Json::object());
      INFO(checked.dump());
      CHECK_FALSE(checked.value("isError", false));
      auto keys = KeysByLabel(checked["structuredContent"]);
      CHECK(keys["openai#1"]["state"] == state_after_check);
      CHECK(keys["openai#2"]["state"] == "ready");
      CHECK(server.KeyStatus()["openai#1"]["state"] == state_after_check);
      // One GET /models per key, no completion spent.
      CHECK(Sorted(rig.mock.KeysSeenOn("/models")) == std::vector<std::string>{"1111", "2222"});
      CHECK(rig.mock.KeysSeen() == std::vector<std::string>{"1111", "2222"});
      server.CloseAndExpectCleanExit();
    }
  }
}

// --- round-robin -------------------------------------------------------------------

TEST_CASE("round-robin starts each call at the next key", "[e2e][tools]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  E2eServer& server =
      rig.Start({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1, kCanary2, kCanary3},
                              "    strategy: round-robin\n" + kFastFailover)});
  for (int i = 0; i < 3; ++i) {
    Json result = server.Complete();
    CHECK(Outcomes(result) == std::vector<std::string>{"ok"});
  }
  std::vector<std::string> seen = rig.mock.KeysSeen();
  REQUIRE(seen.size() == 3);
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 3);
  // Rotation in configured order, wherever it starts.
  const std::vector<std::string> order = {"1111", "2222", "3333"};
  size_t at = std::find(order.begin(), order.end(), seen[0]) - order.begin();
  CHECK(seen[1] == order[(at + 1) % 3]);
  CHECK(seen[2] == order[(at + 2) % 3]);
  auto keys = server.KeyStatus();
  for (const char* label : {"openai#1", "openai#2", "openai#3"}) CHECK(keys[label]["requests"] == 1);
  server.CloseAndExpectCleanExit();
}

// --- cancellation ------------------------------------------------------------------

/// How many of process `pid`'s sockets are TCP connections to 127.0.0.1:`port`.
int UpstreamConnections(int pid, int port) {
  std::set<std::string> inodes;
  std::error_code ec;
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& entry : std::filesystem::directory_iterator(fd_dir, ec)) {
    std::error_code link_ec;
    std::string target = std::filesystem::read_symlink(entry.path(), link_ec).string();
    if (!link_ec && target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  int count = 0;
  for (const char* table : {"/net/tcp", "/net/tcp6"}) {
    std::ifstream in("/proc/" + std::to_string(pid) + table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
      fields >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
      auto colon = remote.rfind(':');
      if (colon == std::string::npos) continue;
      int remote_port = static_cast<int>(std::stoul(remote.substr(colon + 1), nullptr, 16));
      if (remote_port == port && inodes.count(inode)) ++count;
    }
  }
  return count;
}

TEST_CASE("a cancelled completion gets no reply, drops its upstream request and spares the key",
          "[e2e][tools]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  rig.mock.Script(kCanary1, {"hang"});
  E2eServer& server =
      rig.Start({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1, kCanary2, kCanary3})});
  McpSession& session = server.session();

  auto id = session.Send("tools/call", {{"name", "complete"}, {"arguments", {{"prompt", "hi"}}}});
  REQUIRE(id.has_value());
  REQUIRE(rig.mock.WaitForRequests(1, kReadTimeout));
  const int pid = server.process().pid();
  CHECK(UpstreamConnections(pid, rig.mock.port()) >= 1);

  REQUIRE(session.Notify("notifications/cancelled", {{"requestId", *id}, {"reason", "test"}}));
  const auto cancelled_at = Clock::now();
  // The upstream request is abandoned: the connection to the mock goes away.
  int open = -1;
  while (Clock::now() - cancelled_at < milliseconds(2000)) {
    open = UpstreamConnections(pid, rig.mock.port());
    if (open == 0) break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  CHECK(open == 0);
  // SPEC §5 says within 50 ms; allow a loaded machine plenty more.
  CHECK(Clock::now() - cancelled_at < milliseconds(1000));

  // No reply, ever, for the cancelled id (SPEC §5); the server still serves.
  auto reply = session.AwaitReply(*id, milliseconds(1000));
  if (reply) FAIL_CHECK("a reply to a cancelled call: " << reply->dump());
  auto ping = session.Request("ping", nullptr, kReadTimeout);
  REQUIRE(ping.has_value());
  CHECK(ping->contains("result"));

  // No further key was tried and the key is not blamed.
  CHECK(rig.mock.KeysSeen() == std::vector<std::string>{"1111"});
  auto keys = server.KeyStatus();
  CHECK(keys["openai#1"]["state"] == "ready");
  CHECK(keys["openai#1"]["failures"] == 0);
  CHECK(keys["openai#2"]["requests"] == 0);

  // The next call is served at once, by the same key.
  Json next = server.Complete();
  CHECK(Outcomes(next) == std::vector<std::string>{"ok"});
  CHECK(rig.mock.KeysSeen() == std::vector<std::string>{"1111", "1111"});
  server.CloseAndExpectCleanExit();
}

TEST_CASE("closing stdin while a completion streams still delivers its answer, then exits 0",
          "[e2e][tools]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  const std::string answer = "one two three four five six seven eight";
  rig.mock.Script(kCanary1, {"slow:100:" + answer});
  E2eServer& server = rig.Start({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1})});
  McpSession& session = server.session();
  auto id = session.Send("tools/call", {{"name", "complete"}, {"arguments", {{"prompt", "hi"}}}});
  REQUIRE(id.has_value());
  REQUIRE(rig.mock.WaitForRequests(1, kReadTimeout));
  server.process().CloseStdin();
  auto reply = session.AwaitReply(*id, kReadTimeout);
  REQUIRE(reply.has_value());
  INFO(reply->dump());
  REQUIRE(reply->contains("result"));
  server.Remember(reply->dump());
  CHECK(ResultText((*reply)["result"]) == answer);
  server.CloseAndExpectCleanExit();
}

// --- progress ----------------------------------------------------------------------

TEST_CASE("progress notifications carry the token, never decrease and announce a key switch",
          "[e2e][tools]") {
  struct Variant {
    const char* name;
    std::string key1_step;
    std::string key1_outcome;
  };
  const std::string answer = "one two three four five six seven eight nine ten eleven twelve";
  for (const Variant& v : {Variant{"key 1 is rate limited", "429", "rate_limited"},
                           Variant{"key 1's stream is cut midway: the restart does not count down",
                                   "cut:" + answer + " " + answer, "server_error"}}) {
    DYNAMIC_SECTION(v.name) {
      const std::string& key1_outcome = v.key1_outcome;
      E2eRig rig(KeypoolBinary(), MockBinary());
      rig.mock.Script(kCanary1, {v.key1_step});
      rig.mock.Script(kCanary2, {"slow:50:" + answer});
      E2eServer& server =
          rig.Start({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1, kCanary2, kCanary3})});
      McpSession& session = server.session();

      const Json token = "progress-5";
      auto id = session.Send(
          "tools/call",
          {{"name", "complete"}, {"arguments", {{"prompt", "hi"}}}, {"_meta", {{"progressToken", token}}}});
      REQUIRE(id.has_value());
      auto reply = session.AwaitReply(*id, kReadTimeout);
      REQUIRE(reply.has_value());
      INFO(reply->dump());
      REQUIRE(reply->contains("result"));
      server.Remember(reply->dump());
      const Json& result = (*reply)["result"];
      CHECK(ResultText(result) == answer);
      CHECK(Outcomes(result) == std::vector<std::string>{key1_outcome, "ok"});
      session.ReadMessage(milliseconds(300));  // anything sent late

      std::vector<Json> progress;
      for (const auto& n : session.notifications()) {
        if (n.value("method", "") == "notifications/progress") progress.push_back(n["params"]);
      }
      INFO("progress: " << Json(progress).dump());
      REQUIRE(progress.size() >= 2);
      double last = -1;
      int switch_at = -1, first_chars_at = -1;
      for (size_t i = 0; i < progress.size(); ++i) {
        const Json& p = progress[i];
        CHECK(p["progressToken"] == token);
        REQUIRE(p["progress"].is_number());
        CHECK(p["progress"].get<double>() >= last);
        last = p["progress"].get<double>();
        std::string message = p.value("message", "");
        if (switch_at < 0 && Contains(message, "openai#1") && Contains(message, key1_outcome) &&
            Contains(message, "openai#2")) {
          switch_at = static_cast<int>(i);
        }
        if (first_chars_at < 0 && Contains(message, "openai#2") && Contains(message, "chars")) {
          first_chars_at = static_cast<int>(i);
        }
      }
      CHECK(switch_at >= 0);
      CHECK(first_chars_at >= 0);
      CHECK(switch_at < first_chars_at);
      CHECK(last > 0);
      // Characters received: at most what key 1 sent before failing plus the whole answer.
      CHECK(last <= static_cast<double>(2 * answer.size() + 1));

      // Nothing about this call follows its reply on the wire.
      const auto& lines = session.lines();
      size_t reply_line = lines.size();
      for (size_t i = 0; i < lines.size(); ++i) {
        Json m = Json::parse(lines[i], nullptr, false);
        if (m.is_object() && !m.contains("method") && m["id"] == *id) reply_line = i;
      }
      REQUIRE(reply_line < lines.size());
      for (size_t i = reply_line + 1; i < lines.size(); ++i) {
        CHECK_FALSE(Contains(lines[i], "notifications/progress"));
      }
      server.CloseAndExpectCleanExit();
    }
  }
}

// --- list_models -------------------------------------------------------------------

TEST_CASE("list_models fetches through the pool for each API and fails over past a revoked key",
          "[e2e][tools]") {
  struct Flavor {
    const char* type;
    const char* model_id;
  };
  for (const Flavor& f : {Flavor{"openai", "gpt-mock"}, Flavor{"anthropic", "claude-mock-1"},
                          Flavor{"gemini", "gemini-mock"}}) {
    DYNAMIC_SECTION(f.type) {
      E2eRig rig(KeypoolBinary(), MockBinary());
      bool revoked = false;
      SECTION("key 1 answers") {}
      SECTION("key 1 revoked: key 2 answers") {
        revoked = true;
        rig.mock.SetDefault(kCanary1, "401");
      }
      const std::string name = std::string("my-") + f.type;
      E2eServer& server = rig.Start({MockProvider(rig.mock, name, f.type, f.model_id, {kCanary1, kCanary2})});
      Json result = server.CallTool("list_models", {{"provider", name}});
      INFO(result.dump());
      CHECK_FALSE(result.value("isError", false));
      const Json& sc = result["structuredContent"];
      CHECK(sc["provider"] == name);
      REQUIRE(sc["models"].is_array());
      std::vector<std::string> ids;
      for (const auto& m : sc["models"]) ids.push_back(m.value("id", ""));
      CHECK(std::find(ids.begin(), ids.end(), f.model_id) != ids.end());
      CHECK(Contains(ResultText(result), f.model_id));

      Json requests = rig.mock.Requests();
      REQUIRE_FALSE(requests.empty());
      for (const auto& r : requests) {
        INFO(r.dump());
        CHECK(r["method"] == "GET");
        CHECK(r["flavor"] == f.type);  // the mock tells the API by the auth header
        CHECK(r["key_in_query"] == false);
      }
      if (!revoked) {
        CHECK(Outcomes(result) == std::vector<std::string>{"ok"});
        CHECK(rig.mock.KeysSeenOn("/models") == std::vector<std::string>{"1111"});
      } else {
        CHECK(Outcomes(result) == std::vector<std::string>{"auth_error", "ok"});
        CHECK(rig.mock.KeysSeenOn("/models") == std::vector<std::string>{"1111", "2222"});
        auto keys = server.KeyStatus();
        CHECK(keys[name + "#1"]["state"] == "disabled");
        CHECK(keys[name + "#2"]["state"] == "ready");
      }
      server.CloseAndExpectCleanExit();
    }
  }
}

// --- start-up health check ---------------------------------------------------------

TEST_CASE("healthCheck validates keys at start-up without blocking initialize", "[e2e][tools]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  // Key 1's check is answered 401, but only after 2 s.
  rig.mock.Script(kCanary1, {"delay:2000:401"});
  E2eServer& server = rig.Start({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1, kCanary2},
                                              "    healthCheck: true\n" + kFastFailover)},
                                "", {}, /*initialize=*/false);
  server.Initialize();
  // initialize was answered while key 1's check still waits on the mock.
  auto early = server.KeyStatus();
  CHECK(early["openai#1"]["state"] == "ready");

  std::map<std::string, Json> keys;
  const auto deadline = Clock::now() + milliseconds(8000);
  while (Clock::now() < deadline) {
    keys = server.KeyStatus();
    if (keys["openai#1"]["state"] == "disabled") break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  INFO(Json(keys).dump());
  CHECK(keys["openai#1"]["state"] == "disabled");
  CHECK(keys["openai#2"]["state"] == "ready");
  CHECK(Sorted(rig.mock.KeysSeenOn("/models")) == std::vector<std::string>{"1111", "2222"});
  CHECK(rig.mock.KeysSeen().empty());  // no completion was called
  // The next completion skips the disabled key.
  Json result = server.Complete();
  CHECK(Outcomes(result) == std::vector<std::string>{"ok"});
  CHECK(rig.mock.KeysSeen() == std::vector<std::string>{"2222"});
  server.CloseAndExpectCleanExit();
}

}  // namespace
}  // namespace kpm::testing
