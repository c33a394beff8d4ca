// The config loader against hostile or careless files (hardening issue #7, items 6, 10,
// 11, 13) and the per-key baseUrl of issue #8.

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "server/config.h"
#include "tests/unit/server_config/config_test_util.h"

namespace kpm::server {
namespace {

using testing::FakeEnv;

namespace fs = std::filesystem;

std::string ErrorOf(std::string_view text, std::string_view path = "c.yaml", const EnvLookup& env = FakeEnv({})) {
  auto r = ParseConfigText(text, path, env);
  if (r) return "(loaded fine)";
  CHECK(r.error().kind == ErrorKind::kConfig);
  return r.error().message;
}

Config Load(std::string_view text, std::string_view path = "c.yaml", const EnvLookup& env = FakeEnv({})) {
  auto r = ParseConfigText(text, path, env);
  if (!r) FAIL(r.error().message);
  return r.value();
}

/// The "billion laughs": nine levels of nine aliases, 9^9 = 387 million values once
/// expanded, from under 400 bytes.
std::string AliasBomb() {
  std::string text = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    const char prev = static_cast<char>(c - 1);
    text += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) text += std::string(i ? ", " : "") + "*" + prev;
    text += "]\n";
  }
  return text + "mcp: {openai: {apiKey: x}}\n";
}

TEST_CASE("A YAML alias bomb is refused at once with a config error", "[unit][config]") {
  const std::string bomb = AliasBomb();
  REQUIRE(bomb.size() < 500);
  const auto start = std::chrono::steady_clock::now();
  const std::string message = ErrorOf(bomb);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK_THAT(message, Catch::StartsWith("c.yaml:"));
  CHECK_THAT(message, Catch::Contains("expands to more than 100000 values"));
  // Generous: the unbounded expansion took seconds and then ran out of memory. A
  // sanitizer build multiplies the time, so the bound holds for optimised builds only.
#ifndef KPM_UNOPTIMISED_BUILD
  CHECK(took < std::chrono::seconds(5));
#else
  (void)took;
#endif

  SECTION("aliases within reason still load") {
    Config c = Load("mcp:\n  openai: &shared {apiKey: [a, b], timeoutMs: 5000, failover: &f {backoffMs: 1}}\n"
                    "  backup: {type: openai, apiKey: c, failover: *f}\n");
    CHECK(c.providers[1].failover.backoff_ms == 1);
  }
}

TEST_CASE("A NUL byte in the file is an error at its position, not the end of the file", "[unit][config]") {
  // Both parsers took the NUL for the end: what followed was dropped without a word.
  const std::string json = std::string("{\"mcp\": {\"openai\": {\"apiKey\": \"x\"}}}\n") + '\0' + "garbage";
  CHECK(ErrorOf(json, "c.json") == "c.json:2:1: the file contains a NUL byte");
  CHECK(ErrorOf(std::string("mcp:\n  openai:\n    apiKey: ab") + '\0' + "cd\n") ==
        "c.yaml:3:15: the file contains a NUL byte");
}

TEST_CASE("A key object may carry its own baseUrl", "[unit][config]") {
  Config c = Load("mcp:\n"
                  "  openai:\n"
                  "    apiKey:\n"
                  "      - {key: a, name: eu, baseUrl: 'https://eu.api.example.com/v1//'}\n"
                  "      - b\n"
                  "      - {key: c, account: org-1}\n");
  const auto& keys = c.providers[0].keys;
  REQUIRE(keys.size() == 3);
  CHECK(keys[0].base_url == "https://eu.api.example.com/v1");  // trailing '/' removed, as at provider level
  CHECK(keys[1].base_url.empty());                             // empty = the provider's
  CHECK(keys[2].base_url.empty());
  CHECK(c.providers[0].base_url == "https://api.openai.com/v1");
  // The loader leaves the model to providers::DefaultModel: no model, no default here.
  CHECK(c.providers[0].model.empty());
  CHECK(c.warnings.empty());
  // JSON, the same.
  Config j = Load(R"({"mcp": {"openai": {"apiKey": [{"key": "a", "baseUrl": "http://127.0.0.1:8080/v1"}]}}})",
                  "c.json");
  CHECK(j.providers[0].keys[0].base_url == "http://127.0.0.1:8080/v1");
}

TEST_CASE("Every baseUrl is checked with libcurl's parser when the file loads", "[unit][config]") {
  struct Row {
    const char* value;  // a YAML scalar
    const char* want;   // the message after the field path
  };
  const Row rows[] = {
      {"'https://api.example.com/v1?x=1'", "must not have a ?query"},
      {"'https://api.example.com/v1#top'", "must not have a #fragment"},
      {"'https://user:hunter2pass@api.example.com/v1'", "must not carry user:password@"},
      {"'https://api.example .com/v1'", "contains a space or a control character"},
      {"\"https://api.example.com/v1\\r\\n\"", "contains a space or a control character"},
      {"'https://'", ""},
      {"'http://:8080/v1'", ""},
      {"ftp://api.example.com", "must start with http:// or https://"},
  };
  for (const Row& row : rows) {
    DYNAMIC_SECTION(row.value) {
      const std::string provider = ErrorOf(std::string("mcp:\n  openai:\n    baseUrl: ") + row.value + "\n");
      CHECK_THAT(provider, Catch::StartsWith("c.yaml:3:14: mcp.openai.baseUrl: "));
      CHECK_THAT(provider, Catch::Contains(row.want));
      const std::string key =
          ErrorOf(std::string("mcp:\n  openai:\n    apiKey: [{key: k, baseUrl: ") + row.value + "}]\n");
      CHECK_THAT(key, Catch::StartsWith("c.yaml:3:32: mcp.openai.apiKey[0].baseUrl: "));
      CHECK_THAT(key, Catch::Contains(row.want));
      // The URL is never quoted back: user:pass@ is a credential.
      CHECK_THAT(provider + key, !Catch::Contains("hunter2"));
    }
  }
}

TEST_CASE("Key names and accounts cannot forge log lines", "[unit][config]") {
  auto key_with = [](const std::string& field, const std::string& json_value) {
    return R"({"mcp": {"openai": {"apiKey": [{"key": "k", ")" + field + R"(": )" + json_value + "}]}}}";
  };
  for (const char* field : {"name", "account"}) {
    DYNAMIC_SECTION(field) {
      const std::string path = std::string("mcp.openai.apiKey[0].") + field + ": ";
      for (const char* bad : {R"("work\nINFO key switched to attacker")", R"("tab\there")", R"("cr\r")",
                              R"("nel\u0085")", R"("ls\u2028")", R"("del\u007f")"}) {
        INFO(bad);
        CHECK_THAT(ErrorOf(key_with(field, bad), "c.json"),
                   Catch::Contains(path + "must not contain line breaks or control characters"));
      }
      CHECK_THAT(ErrorOf(key_with(field, "\"" + std::string(65, 'n') + "\""), "c.json"),
                 Catch::Contains(path + "too long (at most 64 characters)"));
      // 64 characters, several bytes each, and ordinary Unicode are fine.
      std::string wide;
      for (int i = 0; i < 64; ++i) wide += "\xE9\x8D\xB5";  // 鍵
      Config c = Load(key_with(field, "\"" + wide + "\""), "c.json");
      const auto& k = c.providers[0].keys[0];
      CHECK((std::string(field) == "name" ? k.label : k.account) == wide);
    }
  }
}

TEST_CASE("Messages describe, not quote, values that could be a key", "[unit][config]") {
  const std::string mistral = "Xk3sP9qLmN2vB7tR4wZ8yA1cD5eF6gH0";  // 32 characters, like a Mistral key
  REQUIRE(mistral.size() == 32);
  const std::string cases[] = {
      "mcp:\n  openai:\n    type: " + mistral + "\n",
      "mcp:\n  openai:\n    strategy: " + mistral + "\n",
      "mcp:\n  openai:\n    " + mistral + ": 1\n",
      "mcp:\n  openai:\n    apiKey: [{key: x, " + mistral + ": 1}]\n",
      "default: " + mistral + "\nmcp: {openai: {}}\n",
      "logLevel: " + mistral + "\nmcp: {openai: {}}\n",
      "mcp: {openai: {}}\n" + mistral + ": 1\n",
      "mcp: {openai: {apiKey: [{key: a, name: " + mistral + "}, {key: b, name: " + mistral + "}]}}\n",
      "mcp: {openai: {apiKey: x, fallback: [" + mistral + "]}}\n",
      "mcp: {openai: {apiKey: x, headers: {'" + mistral + " x': 1}}}\n",
      "mcp: {openai: {}}\nmcp: {openai: {}}\n" + mistral + ": 1\n",
  };
  for (const std::string& text : cases) {
    INFO(text);
    const std::string message = ErrorOf(text);
    CHECK(message != "(loaded fine)");
    CHECK_THAT(message, !Catch::Contains(mistral.substr(4, 12)));
  }
  CHECK_THAT(ErrorOf(cases[0]), Catch::Contains("(a 32-character value, not shown)"));
  // Word-like values are quoted whatever their length: lower-case letters, few digits.
  CHECK_THAT(ErrorOf("mcp: {openai: {apiKey: x}}\nfallback: [abcdefghijklmnopq]\n"),
             Catch::Contains("no provider named \"abcdefghijklmnopq\""));
  // A short mixed-case value is quoted: no key is 12 characters long.
  CHECK_THAT(ErrorOf("mcp:\n  openai:\n    type: OpenAI-X\n"), Catch::Contains("\"OpenAI-X\""));

  SECTION("names and words are still quoted, with their did-you-mean") {
    CHECK_THAT(ErrorOf("mcp:\n  x:\n    type: openai-compatibel\n"),
               Catch::Contains("unknown provider type \"openai-compatibel\" — did you mean \"openai-compatible\"?"));
    CHECK_THAT(ErrorOf("mcp:\n  openai:\n    failover: {rateLimitCooldownMaxMS: 5}\n"),
               Catch::Contains("unknown field \"rateLimitCooldownMaxMS\" — did you mean "
                               "\"rateLimitCooldownMaxMs\"?"));
    CHECK_THAT(ErrorOf("mcp:\n  openai:\n    firstByteTimeoutMS: 5\n"),
               Catch::Contains("unknown field \"firstByteTimeoutMS\" — did you mean \"firstByteTimeoutMs\"?"));
    CHECK_THAT(ErrorOf("mcp:\n  openai:\n    rateLimitCooldownMaxMs: 5\n"),
               Catch::Contains("unknown field \"rateLimitCooldownMaxMs\" — \"rateLimitCooldownMaxMs\" belongs in "
                               "the \"failover\" block"));
    CHECK_THAT(ErrorOf("mcp:\n  openai: {apiKey: x}\nrateLimitCooldownMaxMs: 5\n"),
               Catch::Contains("unknown field \"rateLimitCooldownMaxMs\""));
    CHECK_THAT(ErrorOf("mcp: {my-backup-provider: {type: openai}}\ndefault: my-backup-providr\n"),
               Catch::Contains("no provider named \"my-backup-providr\" — did you mean \"my-backup-provider\"?"));
  }
  SECTION("a control character in a quoted value is escaped") {
    const std::string message = ErrorOf("{\"mcp\": {\"openai\": {\"a\\nb\": 1}}}", "c.json");
    CHECK_THAT(message, Catch::Contains("unknown field \"a\\x0ab\""));
    CHECK(message.find('\n') == std::string::npos);
  }
}

/// A file in a fresh temp dir, removed at the end.
struct TempFile {
  fs::path dir;
  fs::path path;
  TempFile(const std::string& name, const std::string& text, fs::perms mode) {
    dir = fs::temp_directory_path() / ("kpm-hardening-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::create_directories(dir);
    path = dir / name;
    std::ofstream(path) << text;
    fs::permissions(path, mode);
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

int CountContaining(const std::vector<std::string>& lines, std::string_view needle) {
  int n = 0;
  for (const std::string& l : lines) n += l.find(needle) != std::string::npos;
  return n;
}

TEST_CASE("Keys over plain http to a host that is not loopback are warned about once", "[unit][config]") {
  const std::string secret = "sk-canary-http-0123456789abcdef";
  SECTION("provider level") {
    Config c = Load("mcp:\n  gpu:\n    type: openai-compatible\n    baseUrl: http://10.0.0.5:8080/v1\n"
                    "    apiKey: [" + secret + ", other-key]\n");
    REQUIRE(c.warnings.size() == 1);
    CHECK_THAT(c.warnings[0],
               Catch::StartsWith("c.yaml:4:14: mcp.gpu.baseUrl: keys go to 10.0.0.5:8080 over plain http://"));
    CHECK_THAT(c.warnings[0], !Catch::Contains(secret));
  }
  SECTION("per key, once per URL") {
    Config c = Load("mcp:\n  openai:\n    apiKey:\n"
                    "      - {key: a, baseUrl: 'http://gpu-box.lan/v1'}\n"
                    "      - {key: b, baseUrl: 'http://gpu-box.lan/v1'}\n"
                    "      - c\n");
    REQUIRE(c.warnings.size() == 1);
    CHECK_THAT(c.warnings[0], Catch::StartsWith("c.yaml:4:27: mcp.openai.apiKey: keys go to gpu-box.lan over plain"));
  }
  SECTION("no warning: loopback, https, or no keys") {
    for (const char* url : {"http://127.0.0.1:11434/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1",
                            "https://10.0.0.5/v1"}) {
      INFO(url);
      CHECK(Load(std::string("mcp:\n  l:\n    type: openai-compatible\n    baseUrl: '") + url + "'\n    apiKey: k\n")
                .warnings.empty());
    }
    CHECK(Load("mcp:\n  l:\n    type: openai-compatible\n    baseUrl: http://10.0.0.5/v1\n").warnings.empty());
    // Every key has its own https URL: the provider's http one carries none.
    CHECK(Load("mcp:\n  l:\n    type: openai-compatible\n    baseUrl: http://10.0.0.5/v1\n"
               "    apiKey: [{key: k, baseUrl: 'https://x.example/v1'}]\n")
              .warnings.empty());
  }
}

TEST_CASE("Proxy variables are named in one warning, their values never", "[unit][config]") {
  CHECK(EnvironmentWarnings(FakeEnv({{"NO_PROXY", "localhost"}, {"HTTPS_PROXY", ""}})).empty());
  auto warnings = EnvironmentWarnings(FakeEnv({{"HTTPS_PROXY", "http://user:s3cretpw@proxy.corp:3128"},
                                               {"http_proxy", "http://user:s3cretpw@proxy.corp:3128"},
                                               {"ALL_PROXY", "socks5://proxy.corp"}}));
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("HTTPS_PROXY, http_proxy, ALL_PROXY"));
  CHECK_THAT(warnings[0], !Catch::Contains("s3cretpw") && !Catch::Contains("proxy.corp"));
  for (const char* name : {"https_proxy", "HTTP_PROXY", "all_proxy"}) {
    CHECK(CountContaining(EnvironmentWarnings(FakeEnv({{name, "http://p:1"}})), name) == 1);
  }
}

TEST_CASE("A config file others can read is warned about when it holds keys written out", "[unit][config]") {
  using fs::perms;
  const perms shared = perms::owner_read | perms::owner_write | perms::group_read | perms::others_read;
  const perms group = perms::owner_read | perms::owner_write | perms::group_read;
  const perms own = perms::owner_read | perms::owner_write;
  const std::string literal = "mcp: {openai: {apiKey: [sk-literal-key-0001, $FROM_ENV]}}\n";
  const std::string only_vars = "mcp: {openai: {apiKey: [$FROM_ENV]}}\n";
  const EnvLookup env = FakeEnv({{"FROM_ENV", "env-key"}});
  {
    TempFile f("config.yaml", literal, shared);
    auto r = LoadConfigFile(f.path.string(), env);
    REQUIRE(r.has_value());
    CHECK(r->literal_keys == 1);
    REQUIRE(CountContaining(r->warnings, "readable") == 1);
    CHECK_THAT(r->warnings.back(), Catch::Contains(f.path.string() + ": holds 1 key(s) written out"));
    CHECK_THAT(r->warnings.back(), Catch::Contains("other users (mode 0644)"));
    CHECK_THAT(r->warnings.back(), !Catch::Contains("sk-literal"));
  }
  {
    TempFile f("config.yaml", literal, group);
    auto r = LoadConfigFile(f.path.string(), env);
    REQUIRE(r.has_value());
    CHECK(CountContaining(r->warnings, "readable by its group (mode 0640)") == 1);
  }
  for (auto [text, mode] : {std::pair{literal, own}, std::pair{only_vars, shared}}) {
    TempFile f("config.yaml", text, mode);
    auto r = LoadConfigFile(f.path.string(), env);
    REQUIRE(r.has_value());
    CHECK(CountContaining(r->warnings, "readable") == 0);
  }
}

}  // namespace
}  // namespace kpm::server
