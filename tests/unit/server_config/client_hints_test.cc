#include "server/client_hints.h"

#include <catch2/catch.hpp>

#include <optional>
#include <string>

namespace kpm::server {
namespace {

Config Loaded(const std::string& yaml) {
  auto r = ParseConfigText(yaml, "c.yaml", [](const std::string& name) -> std::optional<std::string> {
    if (name == "SET_KEY") return std::string("sk-set-Ka7Qz2XwLp9Rt4VbNc");
    return std::nullopt;
  });
  REQUIRE(r.has_value());
  return std::move(r.value());
}

const char* kTwoVars = "providers:\n  openai:\n    type: openai\n    apiKey: [$SET_KEY, $UNSET_KEY]\n";

TEST_CASE("under Gemini CLI an unset variable's reason says how to pass it through", "[unit][config][hints]") {
  Config c = Loaded(kTwoVars);
  CHECK(ApplyClientHints(c, "gemini-cli-mcp-client"));
  const auto& keys = c.providers[0].keys;
  CHECK(keys[0].disabled_reason.empty());  // a key that loaded is left alone
  CHECK(keys[1].disabled_reason.find("environment variable UNSET_KEY is not set") == 0);
  CHECK(keys[1].disabled_reason.find("\"env\": {\"UNSET_KEY\": \"$UNSET_KEY\"}") != std::string::npos);
  CHECK(keys[1].disabled_reason.find("~/.gemini/settings.json") != std::string::npos);
}

TEST_CASE("under Codex an unset variable's reason names env_vars", "[unit][config][hints]") {
  Config c = Loaded(kTwoVars);
  CHECK(ApplyClientHints(c, "codex-mcp-client"));
  CHECK(c.providers[0].keys[1].disabled_reason.find("env_vars = [\"UNSET_KEY\"]") != std::string::npos);
}

TEST_CASE("a client that passes the environment through gets the plain reason", "[unit][config][hints]") {
  Config c = Loaded(kTwoVars);
  CHECK_FALSE(ApplyClientHints(c, "claude-code"));
  CHECK(c.providers[0].keys[1].disabled_reason == "environment variable UNSET_KEY is not set");
  CHECK(EnvPassThroughHint("", "X").empty());
}

}  // namespace
}  // namespace kpm::server
