// `keypool-mcp register CLIENT` (issue 11 item 2): server/register.h. The JSON outputs are
// parsed back; the TOML and shell outputs are checked line by line. The real clients'
// parsers are run by scripts/check_clients.sh.
#include "server/register.h"

#include <catch2/catch.hpp>

#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/config.h"

namespace kpm::server {
namespace {

using Json = nlohmann::json;

const std::string kBin = "/opt/keypool mcp/bin/keypool-mcp";  // a space: quoting matters
const std::string kCfg = "/home/ann/.config/keypool-mcp/config.yaml";
const std::vector<std::string> kVars = {"OR_KEY_1", "OR_KEY_2", "OPENAI_KEY_1"};

RegisterInput Input(const std::string& client, std::vector<std::string> vars = kVars, int64_t deadline = 150000) {
  RegisterInput in;
  in.client = client;
  in.binary_path = kBin;
  in.config_path = kCfg;
  in.env_vars = std::move(vars);
  in.deadline_ms = deadline;
  return in;
}

Registration Build(const RegisterInput& in) {
  auto r = BuildRegistration(in);
  REQUIRE(r.has_value());
  return r.value();
}

/// The text parsed as JSON; fails the test when it is not.
Json ParseJson(const std::string& text) {
  Json j = Json::parse(text, nullptr, false);
  INFO(text);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool HasLine(const std::string& text, const std::string& line) {
  for (const auto& l : Lines(text)) {
    if (l == line) return true;
  }
  return false;
}

const Json kArgs = Json::array({"--config", kCfg});

TEST_CASE("gemini gets the absolute paths and an env line for every variable and a timeout in ms",
          "[unit][register]") {
  Registration r = Build(Input("gemini"));
  Json s = ParseJson(r.text)["mcpServers"]["keypool"];
  CHECK(s["command"] == kBin);
  CHECK(s["args"] == kArgs);
  CHECK(s["env"] == Json{{"OR_KEY_1", "$OR_KEY_1"}, {"OR_KEY_2", "$OR_KEY_2"}, {"OPENAI_KEY_1", "$OPENAI_KEY_1"}});
  CHECK(s["timeout"] == 160000);
  REQUIRE_FALSE(r.notes.empty());
  CHECK(r.notes[0].find("~/.gemini/settings.json") != std::string::npos);
}

TEST_CASE("gemini without variables has no env block", "[unit][register]") {
  Json s = ParseJson(Build(Input("gemini", {})).text)["mcpServers"]["keypool"];
  CHECK_FALSE(s.contains("env"));
}

TEST_CASE("codex gets env_vars and tool and startup timeouts in seconds", "[unit][register]") {
  Registration r = Build(Input("codex"));
  INFO(r.text);
  CHECK(Lines(r.text).at(0).rfind("# ", 0) == 0);
  CHECK(r.text.find("~/.codex/config.toml") != std::string::npos);
  CHECK(HasLine(r.text, "[mcp_servers.keypool]"));
  CHECK(HasLine(r.text, "command = \"" + kBin + "\""));
  CHECK(HasLine(r.text, "args = [\"--config\", \"" + kCfg + "\"]"));
  CHECK(HasLine(r.text, "env_vars = [\"OR_KEY_1\", \"OR_KEY_2\", \"OPENAI_KEY_1\"]"));
  CHECK(HasLine(r.text, "tool_timeout_sec = 160"));
  CHECK(HasLine(r.text, "startup_timeout_sec = 30"));
  // Every line is a comment, a table header or a key = value pair.
  for (const auto& l : Lines(r.text)) {
    INFO(l);
    CHECK((l.rfind("# ", 0) == 0 || l.rfind("[", 0) == 0 || l.find(" = ") != std::string::npos));
  }
}

TEST_CASE("codex rounds a deadline that is not whole seconds up", "[unit][register]") {
  std::string text = Build(Input("codex", {}, 120500)).text;
  CHECK(HasLine(text, "tool_timeout_sec = 131"));
  CHECK(text.find("env_vars") == std::string::npos);
}

TEST_CASE("codex escapes quotes and backslashes in paths as TOML basic strings", "[unit][register]") {
  RegisterInput in = Input("codex");
  in.config_path = "/tmp/a \"b\"\\c.yaml";
  CHECK(HasLine(Build(in).text, "args = [\"--config\", \"/tmp/a \\\"b\\\"\\\\c.yaml\"]"));
}

TEST_CASE("claude gets one add-json command at user scope whose JSON names the paths", "[unit][register]") {
  Registration r = Build(Input("claude"));
  std::vector<std::string> lines = Lines(r.text);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].rfind("# ", 0) == 0);
  const std::string prefix = "claude mcp add-json keypool '";
  const std::string suffix = "' --scope user";
  REQUIRE(lines[1].rfind(prefix, 0) == 0);
  REQUIRE(lines[1].size() > prefix.size() + suffix.size());
  REQUIRE(lines[1].substr(lines[1].size() - suffix.size()) == suffix);
  Json s = ParseJson(lines[1].substr(prefix.size(), lines[1].size() - prefix.size() - suffix.size()));
  CHECK(s["type"] == "stdio");
  CHECK(s["command"] == kBin);
  CHECK(s["args"] == kArgs);
  CHECK(s["timeout"] == 160000);
}

TEST_CASE("claude quotes a single quote in a path for the shell", "[unit][register]") {
  RegisterInput in = Input("claude");
  in.config_path = "/home/o'neil/config.yaml";
  CHECK(Build(in).text.find("/home/o'\\''neil/config.yaml") != std::string::npos);
}

TEST_CASE("opencode gets the command as an array and environment substitutions", "[unit][register]") {
  Json doc = ParseJson(Build(Input("opencode")).text);
  CHECK(doc["$schema"] == "https://opencode.ai/config.json");
  Json s = doc["mcp"]["keypool"];
  CHECK(s["type"] == "local");
  CHECK(s["command"] == Json::array({kBin, "--config", kCfg}));
  CHECK(s["environment"]["OR_KEY_1"] == "{env:OR_KEY_1}");
  CHECK(s["environment"].size() == 3);
  CHECK(s["timeout"] == 160000);
}

TEST_CASE("vscode gets a stdio entry under servers", "[unit][register]") {
  Json s = ParseJson(Build(Input("vscode")).text)["servers"]["keypool"];
  CHECK(s["type"] == "stdio");
  CHECK(s["command"] == kBin);
  CHECK(s["args"] == kArgs);
}

TEST_CASE("cursor and claude-desktop get mcpServers entries and a note naming the variables",
          "[unit][register]") {
  for (const std::string client : {"cursor", "claude-desktop"}) {
    INFO(client);
    Registration r = Build(Input(client));
    Json s = ParseJson(r.text)["mcpServers"]["keypool"];
    CHECK(s["command"] == kBin);
    CHECK(s["args"] == kArgs);
    REQUIRE(r.notes.size() == 2);
    CHECK(r.notes[1].find("OR_KEY_1, OR_KEY_2, OPENAI_KEY_1") != std::string::npos);
  }
  CHECK(Build(Input("claude-desktop")).notes[0].find("Library/Application Support/Claude") != std::string::npos);
}

TEST_CASE("every client's first note says where the output goes", "[unit][register]") {
  for (const std::string& client : kRegisterClients) {
    INFO(client);
    Registration r = Build(Input(client));
    REQUIRE_FALSE(r.notes.empty());
    CHECK(r.notes[0].find(client == "claude" ? "run the command" : "goes in") != std::string::npos);
    CHECK(r.text.find(kBin) != std::string::npos);
  }
}

TEST_CASE("an unknown client is an error that lists every supported client", "[unit][register]") {
  auto r = BuildRegistration(Input("windsurf"));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().kind == ErrorKind::kInvalidArgument);
  CHECK(r.error().message.find("windsurf") != std::string::npos);
  CHECK(r.error().message.find("claude, gemini, codex, opencode, cursor, vscode, claude-desktop") !=
        std::string::npos);
}

TEST_CASE("a relative path is refused", "[unit][register]") {
  RegisterInput in = Input("gemini");
  in.config_path = "config.yaml";
  CHECK_FALSE(BuildRegistration(in).has_value());
}

TEST_CASE("a path that is not UTF-8 is refused instead of printed wrong", "[unit][register]") {
  RegisterInput in = Input("gemini");
  in.config_path = "/tmp/bad\xff.yaml";
  auto r = BuildRegistration(in);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("not UTF-8") != std::string::npos);
}

TEST_CASE("the timeout comes from the largest deadlineMs of any provider", "[unit][register]") {
  auto config = ParseConfigText(
      "providers:\n"
      "  a: { type: openai, apiKey: $A_KEY, deadlineMs: 30000 }\n"
      "  b: { type: openai, apiKey: $B_KEY, deadlineMs: 200000 }\n",
      "c.yaml", [](const std::string&) { return std::optional<std::string>("sk-x"); });
  REQUIRE(config.has_value());
  CHECK(LargestDeadlineMs(*config) == 200000);
  CHECK(ClientTimeoutMs(LargestDeadlineMs(*config)) == 210000);
  CHECK(config->env_refs == std::vector<std::string>{"A_KEY", "B_KEY"});
}

TEST_CASE("a config without deadlineMs gets the default deadline", "[unit][register]") {
  auto config = ParseConfigText("providers:\n  a: { type: openai, apiKey: sk-x }\n", "c.yaml",
                                [](const std::string&) { return std::nullopt; });
  REQUIRE(config.has_value());
  CHECK(LargestDeadlineMs(*config) == 120000);
}

}  // namespace
}  // namespace kpm::server
