// End to end, issue 11 parts 4 and 6: the config is reloaded while the server runs.
// An edit (saved the way editors save: a new file renamed over the old) that adds a key
// makes key_status list it without a restart, and the keys the config had keep their
// state; an edit that does not load leaves the old pool serving; SIGHUP reloads by hand;
// a server that started on a broken config comes alive once the file is fixed.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/e2e_fixture.h"

namespace kpm::testing {
namespace {

/// Writes `text` next to `path` and renames it over `path`, as editors save.
void SaveAs(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".swp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  REQUIRE(std::rename(tmp.c_str(), path.c_str()) == 0);
}

/// Polls `done` every 20 ms for up to kReadTimeout.
bool Eventually(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + kReadTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

/// True when the server sent a notifications/message whose data.event is `event`.
bool Notified(E2eServer& server, const std::string& event) {
  return Eventually([&] {
    server.session().ReadMessage(std::chrono::milliseconds(10));
    for (const Json& n : server.session().notifications()) {
      if (n.value("method", "") == "notifications/message" && n.contains("params") &&
          n["params"].contains("data") && n["params"]["data"].is_object() &&
          n["params"]["data"].value("event", "") == event) {
        return true;
      }
    }
    return false;
  });
}

TEST_CASE("an edit that adds a key is served without a restart and the old keys keep their state",
          "[e2e][reload]") {
  std::string top;
  SECTION("state in the default sqlite store") {}
  SECTION("state none, in this process only") { top = "state: none\n"; }
  E2eRig rig(KeypoolBinary(), MockBinary());
  rig.mock.Script(kCanary1, {"429:retry-after=60"});
  E2eServer& server = rig.Start({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1})}, top);
  Json first = server.Complete();
  CHECK(first.value("isError", false));  // the only key is rate limited
  REQUIRE(server.KeyStatus("openai")["openai#1"]["state"] == "cooling_down");

  SaveAs(server.config_path(),
         ConfigYaml({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1, kCanary2})}, top));
  REQUIRE(Eventually([&] { return server.KeyStatus("openai").size() == 2; }));
  auto status = server.KeyStatus("openai");
  CHECK(status["openai#1"]["state"] == "cooling_down");  // not forgotten by the reload
  CHECK(status["openai#2"]["state"] == "ready");
  Json second = server.Complete();
  INFO(second.dump());
  CHECK_FALSE(second.value("isError", false));
  CHECK(rig.mock.KeysSeen() == std::vector<std::string>{Last4(kCanary1), Last4(kCanary2)});
  CHECK(Notified(server, "config_reloaded"));

  // A broken edit: one warning, and the pool that loaded keeps serving.
  SaveAs(server.config_path(), "providers:\n  openai: [unclosed\n");
  REQUIRE(server.process().WaitForStderr("does not load", kReadTimeout));
  CHECK(server.process().Stderr().find("the previous config keeps serving") != std::string::npos);
  CHECK(server.KeyStatus("openai").size() == 2);
  CHECK(Notified(server, "config_reload_failed"));  // the client hears it too
  Json third = server.Complete();
  CHECK_FALSE(third.value("isError", false));
  server.CloseAndExpectCleanExit();
}

TEST_CASE("an edit that removes a key takes it out of the pool", "[e2e][reload]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  E2eServer& server =
      rig.Start({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1, kCanary2})});
  REQUIRE(server.KeyStatus("openai").size() == 2);
  SaveAs(server.config_path(), ConfigYaml({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary2})}));
  REQUIRE(Eventually([&] { return server.KeyStatus("openai").size() == 1; }));
  Json result = server.Complete();
  CHECK_FALSE(result.value("isError", false));
  CHECK(rig.mock.KeysSeen() == std::vector<std::string>{Last4(kCanary2)});
  server.CloseAndExpectCleanExit();
}

TEST_CASE("SIGHUP reloads the config and runs its keyCommand again", "[e2e][reload]") {
  TempDir keys;
  const std::string key_file = keys.WriteFile("current", kCanary1 + "\n");
  E2eRig rig(KeypoolBinary(), MockBinary());
  E2eServer& server = rig.Start(
      {MockProvider(rig.mock, "openai", "openai", "gpt-mock", {"{ keyCommand: [cat, " + key_file + "] }"})});
  auto fingerprint = [&] { return server.KeyStatus("openai")["openai#1"]["fingerprint"].get<std::string>(); };
  REQUIRE(fingerprint().find(Last4(kCanary1)) != std::string::npos);
  // The key rotates where the command reads it; the config file itself is unchanged,
  // so only the signal can tell the server.
  keys.WriteFile("current", kCanary2 + "\n");
  REQUIRE(server.process().Signal(SIGHUP));
  REQUIRE(Eventually([&] { return fingerprint().find(Last4(kCanary2)) != std::string::npos; }));
  Json result = server.Complete();
  CHECK_FALSE(result.value("isError", false));
  CHECK(rig.mock.KeysSeen() == std::vector<std::string>{Last4(kCanary2)});
  server.CloseAndExpectCleanExit();
}

TEST_CASE("a server started on a broken config serves once the file is fixed", "[e2e][reload]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  const std::string good = ConfigYaml({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1})});
  std::string broken = good;
  broken.replace(broken.find("apiKey"), 6, "apiKeys");
  E2eServer server(KeypoolBinary(), broken);
  server.Initialize();
  Json before = server.CallTool("key_status", Json::object());
  CHECK(before.value("isError", false));
  CHECK(ResultText(before).find("apiKeys") != std::string::npos);

  SaveAs(server.config_path(), good);
  REQUIRE(Eventually([&] {
    return !server.CallTool("key_status", Json::object()).value("isError", false);
  }));
  Json result = server.Complete();
  CHECK_FALSE(result.value("isError", false));
  CHECK(rig.mock.KeysSeen() == std::vector<std::string>{Last4(kCanary1)});
  CHECK(server.process().WaitForStderr("reloaded", kReadTimeout));
  server.CloseAndExpectCleanExit();
}

TEST_CASE("under Gemini CLI a key whose variable is unset says how to pass it through", "[e2e][reload]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  ServerLaunch launch;
  launch.unset_env = {"KPM_TEST_FILTERED_KEY"};
  E2eServer& server = rig.Start(
      {MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1, "$KPM_TEST_FILTERED_KEY"})}, "", launch,
      /*initialize=*/false);
  auto init = server.session().Request(
      "initialize", {{"protocolVersion", "2025-06-18"},
                     {"capabilities", Json::object()},
                     {"clientInfo", {{"name", "gemini-cli-mcp-client"}, {"version", "0.61.0"}}}});
  REQUIRE(init.has_value());
  REQUIRE(init->contains("result"));
  REQUIRE(server.session().Notify("notifications/initialized"));
  auto status = server.KeyStatus("openai");
  const std::string reason = status["openai#2"]["reason"].get<std::string>();
  CHECK(reason.find("environment variable KPM_TEST_FILTERED_KEY is not set") == 0);
  CHECK(reason.find("\"env\": {\"KPM_TEST_FILTERED_KEY\": \"$KPM_TEST_FILTERED_KEY\"}") != std::string::npos);
  CHECK(status["openai#1"]["state"] == "ready");
  server.CloseAndExpectCleanExit();
}

}  // namespace
}  // namespace kpm::testing
