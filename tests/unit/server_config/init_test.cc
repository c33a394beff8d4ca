#include "server/init.h"
#include "tests/unit/server_config/config_test_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include "server/config_schema.h"

namespace kpm::server {
namespace {

using testing::FakeEnv;
using testing::ReadFile;
using TempDir = testing::ConfigTempDir;

namespace fs = std::filesystem;

constexpr const char* kCanary = "sk-canary-INIT-0123456789abcdefABCDEF";

TEST_CASE("init names every variable of each family found and never a value", "[unit][config][init]") {
  auto env = FakeEnv({{"OPENAI_API_KEY", kCanary},
                      {"OPENAI_API_KEY_2", std::string(kCanary) + "2"},
                      {"OPENAI_API_KEY_1", std::string(kCanary) + "1"},
                      {"ANTHROPIC_API_KEY_3", std::string(kCanary) + "3"},
                      {"GEMINI_API_KEY", ""},  // set but empty: not a key
                      {"HOME", "/home/u"}});
  auto r = BuildStarterConfig(env, "config.schema.json");
  if (!r) FAIL(r.error().message);
  INFO(r->yaml);
  CHECK(r->variables ==
        std::vector<std::string>{"OPENAI_API_KEY", "OPENAI_API_KEY_1", "OPENAI_API_KEY_2", "ANTHROPIC_API_KEY_3"});
  CHECK(r->yaml.rfind("# yaml-language-server: $schema=config.schema.json\n", 0) == 0);
  CHECK(r->yaml.find(kCanary) == std::string::npos);
  CHECK(r->yaml.find("gemini") == std::string::npos);
  CHECK(r->yaml.find("fallback: [openai, anthropic]\n") != std::string::npos);

  auto loaded = ParseConfigText(r->yaml, "config.yaml", env);
  if (!loaded) FAIL(loaded.error().message);
  CHECK(loaded->warnings.empty());
  REQUIRE(loaded->providers.size() == 2);
  CHECK(loaded->providers[0].name == "openai");
  CHECK(loaded->providers[0].type == providers::ProviderType::kOpenAI);
  REQUIRE(loaded->providers[0].keys.size() == 3);
  CHECK(loaded->providers[0].keys[2].env_var == "OPENAI_API_KEY_2");
  CHECK(loaded->providers[0].keys[2].secret == std::string(kCanary) + "2");
  CHECK(loaded->providers[1].type == providers::ProviderType::kAnthropic);
  CHECK(loaded->fallback == std::vector<std::string>{"openai", "anthropic"});
  CHECK(loaded->env_refs == r->variables);
}

TEST_CASE("init with one provider writes no fallback", "[unit][config][init]") {
  auto r = BuildStarterConfig(FakeEnv({{"OPENROUTER_API_KEY", kCanary}}), "s.json");
  if (!r) FAIL(r.error().message);
  CHECK(r->yaml.find("fallback") == std::string::npos);
  auto loaded = ParseConfigText(r->yaml, "c.yaml", FakeEnv({{"OPENROUTER_API_KEY", kCanary}}));
  if (!loaded) FAIL(loaded.error().message);
  REQUIRE(loaded->providers.size() == 1);
  CHECK(loaded->providers[0].type == providers::ProviderType::kOpenRouter);
  CHECK(loaded->fallback.empty());
}

TEST_CASE("init with no provider variable set says which variables it looked for", "[unit][config][init]") {
  auto r = BuildStarterConfig(FakeEnv({{"HOME", "/h"}, {"OPENAI_KEY", kCanary}, {"OPENAI_API_KEY_33", kCanary}}),
                              "s.json");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().kind == ErrorKind::kNotFound);
  for (const char* name : {"OPENAI_API_KEY", "OPENROUTER_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "_1 to"}) {
    CHECK(r.error().message.find(name) != std::string::npos);
  }
  CHECK(r.error().message.find(kCanary) == std::string::npos);
}

TEST_CASE("init writes the config 0600 where the server looks and refuses to overwrite it", "[unit][config][init]") {
  TempDir home;
  auto env = FakeEnv({{"HOME", home.path.string()}, {"GEMINI_API_KEY", kCanary}});
  auto r = RunInit(std::nullopt, false, env);
  if (!r) FAIL(r.error().message);
  const fs::path expected = home.path / ".config" / "keypool-mcp" / "config.yaml";
  CHECK(r->config_path == expected.string());
  CHECK(r->schema_path == (home.path / ".config" / "keypool-mcp" / "config.schema.json").string());
  struct stat st = {};
  REQUIRE(::stat(r->config_path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // The server finds exactly that file, and it loads.
  auto found = FindConfigPath(std::nullopt, env);
  REQUIRE(found.has_value());
  CHECK(*found == expected.string());
  auto loaded = LoadConfigFile(*found, env);
  if (!loaded) FAIL(loaded.error().message);
  CHECK(nlohmann::json::parse(ReadFile(r->schema_path)) == ConfigSchema());

  // A second run keeps the file; --force replaces it (and keeps it 0600).
  std::ofstream(expected) << "# mine\n";
  ::chmod(expected.c_str(), 0644);
  auto again = RunInit(std::nullopt, false, env);
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().message.find("--force") != std::string::npos);
  CHECK(ReadFile(expected) == "# mine\n");
  auto forced = RunInit(std::nullopt, true, env);
  if (!forced) FAIL(forced.error().message);
  CHECK(ReadFile(expected).find("$GEMINI_API_KEY") != std::string::npos);
  REQUIRE(::stat(expected.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("init writes to the config flag path and refuses a json path", "[unit][config][init]") {
  TempDir dir;
  auto env = FakeEnv({{"HOME", dir.path.string()}, {"XDG_CONFIG_HOME", (dir.path / "xdg").string()},
                      {"OPENAI_API_KEY", kCanary}});
  CHECK(InitConfigPath(std::nullopt, env).value() == (dir.path / "xdg" / "keypool-mcp" / "config.yaml").string());
  const std::string mine = (dir.path / "sub" / "kp.yml").string();
  auto r = RunInit(mine, false, env);
  if (!r) FAIL(r.error().message);
  CHECK(r->config_path == mine);
  CHECK(fs::exists(dir.path / "sub" / "config.schema.json"));
  auto json = InitConfigPath(std::string("/x/config.JSON"), env);
  REQUIRE_FALSE(json.has_value());
  CHECK(json.error().message.find("YAML") != std::string::npos);
  // Nothing is written when no variable is found.
  const std::string none = (dir.path / "none" / "c.yaml").string();
  CHECK_FALSE(RunInit(none, false, FakeEnv({{"HOME", dir.path.string()}})).has_value());
  CHECK_FALSE(fs::exists(none));
}

}  // namespace
}  // namespace kpm::server
