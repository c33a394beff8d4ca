// End to end over stdio: the built keypool-mcp binary, spawned with a temp config whose
// keys are canaries and whose upstream is a closed port (nothing real is ever reached).
// SPEC §1 (flags, bad config), §4 (key material), §5 (MCP surface).

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/e2e_fixture.h"

namespace kpm::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kUnsetVar = "KPM_TEST_UNSET_VAR";

/// Three openai keys: a literal, a named object, an unset variable. Port 9 (discard)
/// refuses connections, so a completion fails fast with network_error.
std::string CanaryConfigYaml() {
  return "providers:\n"
         "  openai:\n"
         "    type: openai\n"
         "    baseUrl: http://127.0.0.1:9/v1\n"
         "    model: gpt-test\n"
         "    apiKey:\n"
         "      - " + kCanary1 + "\n"
         "      - key: " + kCanary2 + "\n"
         "        name: personal\n"
         "      - $" + kUnsetVar + "\n"
         "    deadlineMs: 8000\n"
         "    failover:\n"
         "      backoffMs: 1\n";
}

/// A keypool-mcp child with `config_text` in a temp dir and a session on its stdio;
/// kUnsetVar is removed from its environment.
class Server : public E2eServer {
 public:
  explicit Server(const std::string& config_text, std::string file_name = "config.yaml",
                  std::vector<std::string> extra_args = {"--log-level", "debug"})
      : E2eServer(KeypoolBinary(), config_text,
                  ServerLaunch{std::move(file_name), std::move(extra_args), {}, {kUnsetVar}, kCanaries}) {}
};

/// The next reply (a message without "method"), skipping notifications.
Json NextReply(McpSession& session) {
  auto deadline = Clock::now() + kReadTimeout;
  while (Clock::now() < deadline) {
    auto m = session.ReadMessage(
        std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
    if (!m) break;
    if (!m->contains("method")) return *m;
  }
  FAIL("no reply within 10 s");
  return nullptr;
}

int ErrorCode(const Json& reply) {
  INFO(reply.dump());
  REQUIRE(reply.contains("error"));
  return reply["error"]["code"].get<int>();
}

/// SPEC §4: a non-secret prefix of at most 10 characters ending in '-', "…", the last 4.
void CheckFingerprint(const Json& key, const std::string& secret) {
  INFO(key.dump());
  REQUIRE(key["fingerprint"].is_string());
  std::string fp = key["fingerprint"];
  const std::string ellipsis = "\xE2\x80\xA6";  // U+2026
  size_t dots = fp.find(ellipsis);
  REQUIRE(dots != std::string::npos);
  std::string prefix = fp.substr(0, dots);
  std::string tail = fp.substr(dots + ellipsis.size());
  CHECK(tail == secret.substr(secret.size() - 4));
  CHECK(prefix.size() <= 10);
  CHECK(prefix.rfind("sk-", 0) == 0);
  CHECK(prefix.back() == '-');
  CHECK(secret.rfind(prefix, 0) == 0);
}

TEST_CASE("initialize echoes a supported protocol version and answers 2025-11-25 otherwise",
          "[e2e][stdio]") {
  const std::pair<std::string, std::string> cases[] = {
      {"2025-11-25", "2025-11-25"},
      {"2025-06-18", "2025-06-18"},
      {"2025-03-26", "2025-03-26"},
      {"1999-01-01", "2025-11-25"},
  };
  for (const auto& [asked, answered] : cases) {
    INFO("client asks for " << asked);
    Server server(CanaryConfigYaml());
    auto reply = server.session().Initialize(asked, kReadTimeout);
    REQUIRE(reply.has_value());
    INFO(reply->dump());
    REQUIRE(reply->contains("result"));
    const Json& result = (*reply)["result"];
    CHECK(result["protocolVersion"] == answered);
    CHECK(result["serverInfo"]["name"].is_string());
    CHECK(result["serverInfo"]["version"].is_string());
    // instructions tell the agent which tool is for what, and what this server has.
    const std::string instructions = result.value("instructions", "");
    for (const char* tool : {"complete", "key_status", "check_keys", "list_models"}) {
      CHECK(instructions.find(tool) != std::string::npos);
    }
    CHECK(instructions.find("the default is ") != std::string::npos);
    CHECK(result["capabilities"]["tools"].is_object());
    // notifications/initialized (sent by Initialize) gets no reply; ping still works.
    auto ping = server.session().Request("ping", nullptr, kReadTimeout);
    REQUIRE(ping.has_value());
    CHECK(ping->contains("result"));
    server.CloseAndExpectCleanExit();
  }
}

TEST_CASE("tools/list has the four tools and each has object input and output schemas",
          "[e2e][stdio]") {
  Server server(CanaryConfigYaml());
  server.Initialize();
  auto reply = server.session().Request("tools/list", Json::object(), kReadTimeout);
  REQUIRE(reply.has_value());
  INFO(reply->dump());
  REQUIRE(reply->contains("result"));
  const Json& tools = (*reply)["result"]["tools"];
  REQUIRE(tools.is_array());
  std::set<std::string> names;
  for (const auto& tool : tools) {
    INFO(tool.dump());
    names.insert(tool.value("name", ""));
    CHECK(tool["inputSchema"].is_object());
    CHECK(tool["inputSchema"]["type"] == "object");
    CHECK(tool["outputSchema"].is_object());
    CHECK(tool["outputSchema"]["type"] == "object");
    CHECK(tool["description"].is_string());
  }
  CHECK(names == std::set<std::string>{"complete", "key_status", "check_keys", "list_models"});
  CHECK(tools.size() == 4);
  // Hints for the client: what only reads, what reaches the outside world.
  for (const auto& tool : tools) {
    const std::string name = tool.value("name", "");
    INFO(name);
    REQUIRE(tool["annotations"].is_object());
    CHECK(tool["annotations"]["readOnlyHint"] == (name == "key_status" || name == "list_models"));
    CHECK(tool["annotations"]["openWorldHint"] == (name != "key_status"));
  }
  // All four fit on one page: no cursor to follow.
  CHECK_FALSE(((*reply)["result"].contains("nextCursor") &&
               !(*reply)["result"]["nextCursor"].is_null()));
  server.CloseAndExpectCleanExit();
}

TEST_CASE("key_status shows each key by label and fingerprint; an unset variable disables its key",
          "[e2e][stdio]") {
  Server server(CanaryConfigYaml());
  server.Initialize();
  auto reply = server.session().CallTool("key_status", Json::object(), kReadTimeout);
  REQUIRE(reply.has_value());
  INFO(reply->dump());
  REQUIRE(reply->contains("result"));
  const Json& result = (*reply)["result"];
  CHECK_FALSE(result.value("isError", false));
  REQUIRE(result["structuredContent"]["providers"].size() == 1);
  const Json& provider = result["structuredContent"]["providers"][0];
  CHECK(provider["name"] == "openai");
  CHECK(provider["type"] == "openai");
  CHECK(provider["strategy"] == "sequential");
  CHECK(provider["active_key"].dump().find("openai#1") != std::string::npos);

  auto keys = KeysByLabel(result["structuredContent"]);
  REQUIRE(keys.size() == 3);
  REQUIRE(keys.count("openai#1"));
  REQUIRE(keys.count("personal"));
  REQUIRE(keys.count("openai#3"));
  CheckFingerprint(keys["openai#1"], kCanary1);
  CheckFingerprint(keys["personal"], kCanary2);
  CHECK(keys["openai#1"]["state"] == "ready");
  CHECK(keys["personal"]["state"] == "ready");
  CHECK(keys["openai#3"]["state"] == "disabled");
  CHECK(keys["openai#3"].value("reason", "").find(kUnsetVar) != std::string::npos);
  for (auto& [label, key] : keys) {
    INFO(label);
    CHECK(key["requests"].is_number_integer());
    CHECK(key["failures"].is_number_integer());
  }

  std::string text = ResultText(result);
  CHECK(text.find("openai#1") != std::string::npos);
  CHECK(text.find("personal") != std::string::npos);
  CHECK(text.find("openai#3") != std::string::npos);
  // The unset variable is a warning on stderr, naming it.
  CHECK(server.process().WaitForStderr(kUnsetVar, milliseconds(1000)));
  server.CloseAndExpectCleanExit();
}

TEST_CASE("ping answers an empty result", "[e2e][stdio]") {
  Server server(CanaryConfigYaml());
  server.Initialize();
  auto reply = server.session().Request("ping", nullptr, kReadTimeout);
  REQUIRE(reply.has_value());
  INFO(reply->dump());
  REQUIRE(reply->contains("result"));
  CHECK((*reply)["result"] == Json::object());
  server.CloseAndExpectCleanExit();
}

TEST_CASE("bad input gets the JSON-RPC error of SPEC §5 and the server keeps serving",
          "[e2e][stdio]") {
  Server server(CanaryConfigYaml());
  McpSession& s = server.session();

  // Claude Code probes with server/discover first and falls back on any error.
  auto discover = s.Request("server/discover", Json::object(), kReadTimeout);
  REQUIRE(discover.has_value());
  CHECK(ErrorCode(*discover) == -32601);
  server.Initialize();

  SECTION("malformed JSON is -32700 with id null") {
    REQUIRE(s.SendRaw("{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":"));
    Json reply = NextReply(s);
    CHECK(ErrorCode(reply) == -32700);
    CHECK(reply["id"].is_null());
  }
  SECTION("a batch array is -32600") {
    REQUIRE(s.SendRaw(R"([{"jsonrpc":"2.0","id":50,"method":"ping"}])"));
    Json reply = NextReply(s);
    CHECK(ErrorCode(reply) == -32600);
  }
  SECTION("JSON that is not a request object is -32600") {
    REQUIRE(s.SendRaw("42"));
    CHECK(ErrorCode(NextReply(s)) == -32600);
    REQUIRE(s.SendRaw(R"({"jsonrpc":"1.0","id":51,"method":"ping"})"));
    CHECK(ErrorCode(NextReply(s)) == -32600);
  }
  SECTION("an unknown method is -32601") {
    auto reply = s.Request("no/such/method", Json::object(), kReadTimeout);
    REQUIRE(reply.has_value());
    CHECK(ErrorCode(*reply) == -32601);
  }
  SECTION("an unknown tool is -32602") {
    auto reply = s.CallTool("no_such_tool", Json::object(), kReadTimeout);
    REQUIRE(reply.has_value());
    CHECK(ErrorCode(*reply) == -32602);
  }
  SECTION("tools/call without a name is -32602") {
    auto reply = s.Request("tools/call", {{"arguments", Json::object()}}, kReadTimeout);
    REQUIRE(reply.has_value());
    CHECK(ErrorCode(*reply) == -32602);
  }
  SECTION("tool arguments of the wrong type are an isError result naming the field") {
    auto reply = s.CallTool("key_status", {{"provider", 42}}, kReadTimeout);
    REQUIRE(reply.has_value());
    INFO(reply->dump());
    REQUIRE(reply->contains("result"));
    CHECK((*reply)["result"]["isError"] == true);
    CHECK(ResultText((*reply)["result"]).find("provider") != std::string::npos);
  }
  SECTION("an out-of-range max_tokens is an isError result, not undefined behaviour") {
    // Found by fuzz_json_schema: 1e300 passed the schema and reached get<int>().
    for (const char* raw : {"1e300", "4294967297"}) {
      auto reply = s.CallTool("complete", {{"prompt", "x"}, {"max_tokens", nlohmann::json::parse(raw)}}, kReadTimeout);
      REQUIRE(reply.has_value());
      INFO(reply->dump());
      REQUIRE(reply->contains("result"));
      CHECK((*reply)["result"]["isError"] == true);
      CHECK(ResultText((*reply)["result"]).find("max_tokens") != std::string::npos);
    }
  }
  SECTION("a notification is never answered, even an unknown one") {
    REQUIRE(s.Notify("notifications/no_such_thing", Json::object()));
    REQUIRE(s.SendRaw(R"({"jsonrpc":"2.0","method":"ping"})"));
    auto id = s.Send("ping");
    REQUIRE(id.has_value());
    Json reply = NextReply(s);
    CHECK(reply["id"] == *id);
  }

  // Whatever came before, the server still answers.
  auto ping = s.Request("ping", nullptr, kReadTimeout);
  REQUIRE(ping.has_value());
  CHECK(ping->contains("result"));
  server.CloseAndExpectCleanExit();
}

TEST_CASE("complete against a refusing upstream tries each usable key and lists them all",
          "[e2e][stdio]") {
  // trace logs message bodies: the most talkative level must still hide the keys.
  Server server(CanaryConfigYaml(), "config.yaml", {"--log-level", "trace"});
  server.Initialize();
  auto reply = server.session().CallTool("complete", {{"prompt", "hi"}}, kReadTimeout);
  REQUIRE(reply.has_value());
  INFO(reply->dump());
  REQUIRE(reply->contains("result"));
  const Json& result = (*reply)["result"];
  CHECK(result["isError"] == true);
  std::string text = ResultText(result);
  for (const char* label : {"openai#1", "personal", "openai#3"}) {
    CHECK(text.find(label) != std::string::npos);
  }
  if (result.contains("structuredContent")) {
    const Json& attempts = result["structuredContent"]["attempts"];
    REQUIRE(attempts.is_array());
    REQUIRE(attempts.size() == 2);  // the disabled key is never tried
    CHECK(attempts[0]["outcome"] == "network_error");
    CHECK(attempts[1]["outcome"] == "network_error");
  }

  auto keys = server.KeyStatus();
  CHECK(keys["openai#1"]["state"] == "cooling_down");
  // SPEC §3: a network error repeating on a second key of the same endpoint is the
  // endpoint's fault, not the key's: counted, but the key stays ready.
  CHECK(keys["personal"]["state"] == "ready");
  CHECK(keys["personal"]["failures"] == 1);
  CHECK(keys["openai#3"]["state"] == "disabled");
  CHECK(keys["openai#1"]["requests"] == 1);
  CHECK(keys["openai#1"]["failures"] == 1);
  server.CloseAndExpectCleanExit();
}

TEST_CASE("closing stdin ends the server with 0 after answering what is in flight",
          "[e2e][stdio]") {
  Server server(CanaryConfigYaml());
  server.Initialize();
  auto id = server.session().Send("ping");
  REQUIRE(id.has_value());
  server.process().CloseStdin();
  auto start = Clock::now();
  auto reply = server.session().AwaitReply(*id, kExitTimeout);
  REQUIRE(reply.has_value());
  CHECK(reply->contains("result"));
  server.session().DrainUntilEof(kExitTimeout);
  CHECK(server.process().WaitExit(kExitTimeout) == std::optional<int>(0));
  CHECK(Clock::now() - start < kExitTimeout);
  server.CheckTranscript();
}

TEST_CASE("SIGTERM ends the server with 0 promptly", "[e2e][stdio]") {
  Server server(CanaryConfigYaml());
  server.Initialize();
  auto start = Clock::now();
  REQUIRE(server.process().Signal(SIGTERM));
  CHECK(server.process().WaitExit(milliseconds(3000)) == std::optional<int>(0));
  CHECK(Clock::now() - start < milliseconds(3000));
  server.session().DrainUntilEof(milliseconds(1000));
  server.CheckTranscript();
}

TEST_CASE("the version flag prints a version on stdout and exits 0", "[e2e][stdio]") {
  TempDir home;
  auto p = RunToExit(KeypoolBinary(), {"--version"}, home);
  CHECK(p->WaitExit(milliseconds(0)) == std::optional<int>(0));
  CHECK(std::regex_search(p->StdoutSoFar(), std::regex(R"(\d+\.\d+\.\d+)")));
}

TEST_CASE("an unknown flag is a usage error with exit code 2", "[e2e][stdio]") {
  TempDir home;
  auto p = RunToExit(KeypoolBinary(), {"--no-such-flag"}, home);
  CHECK(p->WaitExit(milliseconds(0)) == std::optional<int>(2));
  CHECK(p->StdoutSoFar().empty());
  CHECK(p->Stderr().find("--no-such-flag") != std::string::npos);
}

TEST_CASE("the help flag prints usage naming the flags and exits 0", "[e2e][stdio]") {
  TempDir home;
  auto p = RunToExit(KeypoolBinary(), {"--help"}, home);
  CHECK(p->WaitExit(milliseconds(0)) == std::optional<int>(0));
  const std::string& out = p->StdoutSoFar();
  for (const char* flag : {"--config", "--log-level", "--check", "--version"}) {
    CHECK(out.find(flag) != std::string::npos);
  }
}

TEST_CASE("a config with an unknown field still completes the handshake and every tool call names file line and field",
          "[e2e][stdio]") {
  std::string name, text, field, hint, line;
  SECTION("YAML, a typo in apiKey") {
    name = "broken.yaml";
    text = "providers:\n"
           "  openai:\n"
           "    type: openai\n"
           "    apiKeys:\n"
           "      - " + kCanary1 + "\n";
    field = "apiKeys";
    hint = "apiKey";
    line = ":4:";
  }
  SECTION("JSON, a typo in model") {
    name = "broken.json";
    text = R"({"providers": {"openai": {"type": "openai", "apiKey": [")" + kCanary1 + R"("], "modle": "gpt-test"}}})";
    field = "modle";
    hint = "model";  // the closest known name (SPEC §1)
    line = ":1:";
  }
  // A client shows "connection closed" and nothing else for a server that exits at
  // start, so the server stays up and says what is wrong wherever the agent looks.
  Server server(text, name);
  const std::string where = server.config_path() + line;
  auto init = server.session().Initialize();
  REQUIRE(init.has_value());
  REQUIRE(init->contains("result"));
  const std::string instructions = (*init)["result"].value("instructions", "");
  CHECK(instructions.find(where) != std::string::npos);
  CHECK(instructions.find(field) != std::string::npos);
  for (const char* tool : {"complete", "key_status", "check_keys", "list_models"}) {
    INFO(tool);
    Json args = std::string(tool) == "complete" ? Json{{"prompt", "hi"}} : Json::object();
    Json result = server.CallTool(tool, args);
    CHECK(result.value("isError", false));
    const std::string said = ResultText(result);
    CHECK(said.find(where) != std::string::npos);
    CHECK(said.find(field) != std::string::npos);
    CHECK(said.find(hint) != std::string::npos);
  }
  // The same words on stderr, and from --check, which exits 2 (docs/configuration.md).
  auto check = RunToExit(KeypoolBinary(), {"--config", server.config_path(), "--check"}, TempDir());
  CHECK(check->WaitExit(milliseconds(0)) == std::optional<int>(2));
  CHECK(check->Stderr().find(where) != std::string::npos);
  CHECK(check->Stderr().find(field) != std::string::npos);
  CHECK_FALSE(FindSecret(check->Stderr(), kCanaries).has_value());
  CHECK(server.process().WaitForStderr(where, kReadTimeout));
  server.CloseAndExpectCleanExit();
  CHECK(server.process().Stderr().find(hint) != std::string::npos);
}

TEST_CASE("a request line over 16 MiB is answered -32600 with its id and the next is served",
          "[e2e][stdio]") {
  Server server(CanaryConfigYaml());
  server.Initialize();
  McpSession& s = server.session();
  // The id comes first, as clients write it; the prompt takes the line past the limit.
  const std::string line = R"({"jsonrpc":"2.0","id":"huge-1","method":"tools/call","params":{"name":"complete",)"
                           R"("arguments":{"prompt":")" + std::string((16u << 20) + 1000, 'x') + "\"}}}";
  REQUIRE(server.process().WriteLine(line, milliseconds(30000)));
  auto reply = s.AwaitReply("huge-1", kReadTimeout);
  REQUIRE(reply.has_value());
  INFO(reply->dump());
  CHECK(ErrorCode(*reply) == -32600);
  CHECK_THAT((*reply)["error"]["message"].get<std::string>(), Catch::Contains("16 MiB"));
  // The official TypeScript SDK writes the id last ({...request, jsonrpc, id}).
  const std::string sdk_order = R"({"method":"tools/call","params":{"name":"complete","arguments":{"prompt":")" +
                                std::string((16u << 20) + 1000, 'y') + R"("}},"jsonrpc":"2.0","id":9001})";
  REQUIRE(server.process().WriteLine(sdk_order, milliseconds(30000)));
  auto sdk_reply = s.AwaitReply(9001, kReadTimeout);
  REQUIRE(sdk_reply.has_value());
  CHECK(ErrorCode(*sdk_reply) == -32600);
  auto ping = s.Request("ping", nullptr, kReadTimeout);
  REQUIRE(ping.has_value());
  CHECK(ping->contains("result"));
  server.CloseAndExpectCleanExit();
}

TEST_CASE("a line with a NUL byte gets -32700 and the request after it is still served",
          "[e2e][stdio]") {
  Server server(CanaryConfigYaml());
  server.Initialize();
  McpSession& s = server.session();
  const std::string broken = std::string(R"({"jsonrpc":"2.0","id":801,"method":"ping"})") + '\0' +
                             R"({"jsonrpc":"2.0","id":802,"method":"ping"})";
  REQUIRE(s.SendRaw(broken));
  Json err = NextReply(s);
  CHECK(ErrorCode(err) == -32700);
  CHECK(err["id"].is_null());
  auto ping = s.Request("ping", nullptr, kReadTimeout);
  REQUIRE(ping.has_value());
  CHECK(ping->contains("result"));
  for (const std::string& l : s.lines()) {
    CHECK_THAT(l, !Catch::Contains("\"id\":801") && !Catch::Contains("\"id\":802"));
  }
  server.CloseAndExpectCleanExit();
}

TEST_CASE("an id beyond 2^64 comes back exactly as the client wrote it", "[e2e][stdio]") {
  Server server(CanaryConfigYaml());
  server.Initialize();
  McpSession& s = server.session();
  const std::string id = "340282366920938463463374607431768211457";  // 2^128 + 1
  REQUIRE(s.SendRaw(R"({"jsonrpc":"2.0","id":)" + id + R"(,"method":"tools/call","params":{"name":"key_status"}})"));
  Json reply = NextReply(s);
  CHECK(reply.contains("result"));
  bool echoed = false;
  const std::string start = "{\"id\":" + id + ",\"jsonrpc\":\"2.0\",\"result\":";
  for (const std::string& l : s.lines()) echoed |= l.rfind(start, 0) == 0;
  CHECK(echoed);
  server.CloseAndExpectCleanExit();
}

TEST_CASE("one SIGTERM stops a server whose client stopped reading its stdout", "[e2e][stdio]") {
  Server server(CanaryConfigYaml());
  server.Initialize();
  // A four-page stdout pipe that nobody reads: a few hundred replies fill it and the
  // server then waits to write the next one.
  const int capacity = server.process().SetStdoutPipeSize(4 * 4096);
  REQUIRE(capacity > 0);
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(server.session().SendRaw(R"({"jsonrpc":"2.0","id":)" + std::to_string(1000 + i) + R"(,"method":"ping"})"));
  }
  // Full: the kernel stops taking writes once every page holds some bytes, so part of
  // the last pages may stay empty. Blocked: the count stops growing though replies are
  // still owed (a thousand ~40-byte replies are far more than the pipe holds).
  int unread = -1;
  int still = 0;
  for (const auto give_up = Clock::now() + kReadTimeout; still < 3 && Clock::now() < give_up;) {
    std::this_thread::sleep_for(milliseconds(100));
    const int now = server.process().StdoutUnread();
    still = now == unread && now >= capacity / 2 ? still + 1 : 0;
    unread = now;
  }
  INFO("bytes waiting in the pipe: " << unread << " of " << capacity);
  REQUIRE(still == 3);
  const auto start = Clock::now();
  REQUIRE(server.process().Signal(SIGTERM));
  // Only one signal: a blocked write(1) used to need a second one.
  CHECK(server.process().WaitExit(kExitTimeout) == std::optional<int>(0));
  CHECK(Clock::now() - start < kExitTimeout);
  server.session().DrainUntilEof(milliseconds(1000));
  server.CheckTranscript();
}

TEST_CASE("load-time warnings reach stderr once each and show no secret", "[e2e][stdio]") {
  TempDir dir;
  const std::string file = dir.WriteFile("config.yaml",
                                         "providers:\n"
                                         "  lan:\n"
                                         "    type: openai-compatible\n"
                                         "    baseUrl: http://192.0.2.7:9/v1\n"
                                         "    apiKey: [" + kCanary1 + "]\n");
  REQUIRE(::chmod(file.c_str(), 0644) == 0);
  const std::string proxy_secret = "pw-Zq8Xr4Lm2";
  auto p = RunToExit(KeypoolBinary(), {"--config", file}, dir,
                     {{"HTTPS_PROXY", "http://user:" + proxy_secret + "@proxy.invalid:1"}});
  CHECK(p->WaitExit(milliseconds(0)) == std::optional<int>(0));
  const std::string err = p->Stderr();
  INFO("stderr: " << err);
  auto count = [&err](const std::string& needle) {
    size_t n = 0;
    for (size_t at = err.find(needle); at != std::string::npos; at = err.find(needle, at + 1)) ++n;
    return n;
  };
  CHECK(count("192.0.2.7:9 over plain http://") == 1);
  CHECK(count("proxy environment variable(s) set: HTTPS_PROXY") == 1);
  CHECK(count("readable by other users (mode 0644)") == 1);
  CHECK(err.find(proxy_secret) == std::string::npos);
  CHECK(err.find("proxy.invalid") == std::string::npos);
  CHECK_FALSE(FindSecret(err, kCanaries).has_value());
  CHECK(p->StdoutSoFar().empty());
}

}  // namespace
}  // namespace kpm::testing
