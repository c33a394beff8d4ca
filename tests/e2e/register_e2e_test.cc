// End to end, issue 11 item 2: the built binary's `register CLIENT --config X` prints the
// snippet on stdout (parsable, with the binary's and the config's absolute paths), says
// where it goes on stderr, and exits 2 with the client list for an unknown client.
#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/e2e_fixture.h"

namespace kpm::testing {
namespace {

const char kConfig[] =
    "providers:\n"
    "  openrouter:\n"
    "    type: openrouter\n"
    "    baseUrl: http://127.0.0.1:9/api/v1\n"
    "    apiKey: [$KPM_E2E_OR_KEY_1, $KPM_E2E_OR_KEY_2]\n"
    "    deadlineMs: 45000\n";

struct Ran {
  std::optional<int> code;
  std::string out;
  std::string err;
};

/// keypool-mcp register CLIENT --config config.yaml (relative: register makes it absolute).
Ran Register(const TempDir& home, const std::string& client) {
  auto p = RunToExit(KeypoolBinary(), {"register", client, "--config", home.path() + "/./config.yaml"}, home);
  return Ran{p->WaitExit(milliseconds(0)), p->StdoutSoFar(), p->Stderr()};
}

std::string Canonical(const std::string& path) { return std::filesystem::canonical(path).string(); }

TEST_CASE("register gemini prints settings JSON with absolute paths and env lines", "[e2e][register]") {
  TempDir home;
  const std::string config = home.WriteFile("config.yaml", kConfig);
  Ran r = Register(home, "gemini");
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.code == std::optional<int>(0));
  Json doc = Json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(doc.is_discarded());
  Json s = doc["mcpServers"]["keypool"];
  CHECK(s["command"] == Canonical(KeypoolBinary()));
  CHECK(s["args"] == Json::array({"--config", config}));
  CHECK(s["env"] == Json{{"KPM_E2E_OR_KEY_1", "$KPM_E2E_OR_KEY_1"}, {"KPM_E2E_OR_KEY_2", "$KPM_E2E_OR_KEY_2"}});
  CHECK(s["timeout"] == 55000);
  CHECK(r.err.find("keypool-mcp register gemini: goes in ~/.gemini/settings.json") != std::string::npos);
}

TEST_CASE("register codex prints TOML with env_vars and tool_timeout_sec", "[e2e][register]") {
  TempDir home;
  const std::string config = home.WriteFile("config.yaml", kConfig);
  Ran r = Register(home, "codex");
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.code == std::optional<int>(0));
  CHECK(r.out.find("\ncommand = \"" + Canonical(KeypoolBinary()) + "\"\n") != std::string::npos);
  CHECK(r.out.find("\nargs = [\"--config\", \"" + config + "\"]\n") != std::string::npos);
  CHECK(r.out.find("\nenv_vars = [\"KPM_E2E_OR_KEY_1\", \"KPM_E2E_OR_KEY_2\"]\n") != std::string::npos);
  CHECK(r.out.find("\ntool_timeout_sec = 55\n") != std::string::npos);
}

TEST_CASE("register prints a snippet for every client and exits 0", "[e2e][register]") {
  TempDir home;
  home.WriteFile("config.yaml", kConfig);
  for (const char* client : {"claude", "gemini", "codex", "opencode", "cursor", "vscode", "claude-desktop"}) {
    Ran r = Register(home, client);
    INFO(client << " stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.code == std::optional<int>(0));
    CHECK(r.out.find(Canonical(KeypoolBinary())) != std::string::npos);
    CHECK(r.err.find(std::string("keypool-mcp register ") + client + ": ") != std::string::npos);
  }
}

TEST_CASE("register with an unknown client exits 2 and lists the clients", "[e2e][register]") {
  TempDir home;
  home.WriteFile("config.yaml", kConfig);
  Ran r = Register(home, "windsurf");
  INFO("stderr: " << r.err);
  CHECK(r.code == std::optional<int>(2));
  CHECK(r.out.empty());
  CHECK(r.err.find("windsurf not in {claude,gemini,codex,opencode,cursor,vscode,claude-desktop}") !=
        std::string::npos);
}

TEST_CASE("register without a client exits 2", "[e2e][register]") {
  TempDir home;
  auto p = RunToExit(KeypoolBinary(), {"register"}, home);
  CHECK(p->WaitExit(milliseconds(0)) == std::optional<int>(2));
  CHECK(p->StdoutSoFar().empty());
}

}  // namespace
}  // namespace kpm::testing
