#include "server/config.h"
#include "tests/unit/server_config/config_test_util.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>

#include <unistd.h>

namespace kpm::server {
namespace {

using testing::FakeEnv;
using testing::ReadFile;

namespace fs = std::filesystem;
using providers::ProviderConfig;
using providers::ProviderType;

const ProviderConfig& Provider(const Config& c, const std::string& name) {
  for (const ProviderConfig& p : c.providers) {
    if (p.name == name) return p;
  }
  FAIL("no provider " << name);
  throw std::logic_error("unreachable");
}

/// Everything a Config holds, as JSON, so two loads compare in one CHECK.
nlohmann::json Dump(const Config& c) {
  nlohmann::json j;
  j["default"] = c.default_provider;
  j["fallback"] = c.fallback;
  j["logLevel"] = c.log_level ? nlohmann::json(*c.log_level) : nlohmann::json();
  j["warnings"] = c.warnings.size();
  for (const ProviderConfig& p : c.providers) {
    nlohmann::json pj;
    pj["name"] = p.name;
    pj["type"] = std::string(providers::ProviderTypeName(p.type));
    pj["baseUrl"] = p.base_url;
    for (const auto& k : p.keys) {
      pj["keys"].push_back({{"secret", k.secret}, {"label", k.label}, {"account", k.account},
                            {"baseUrl", k.base_url},
                            {"disabled", k.disabled_reason}});
    }
    pj["model"] = p.model;
    pj["maxTokens"] = p.max_tokens ? nlohmann::json(*p.max_tokens) : nlohmann::json();
    pj["headers"] = p.headers;
    pj["stream"] = p.stream;
    pj["timeouts"] = {p.timeout_ms, p.first_byte_timeout_ms, p.idle_timeout_ms};
    pj["healthCheck"] = p.health_check;
    pj["fallback"] = p.fallback ? nlohmann::json(*p.fallback) : nlohmann::json();
    const auto& f = p.failover;
    pj["failover"] = {std::string(f.strategy == keypool::Strategy::kRoundRobin ? "rr" : "seq"),
                      f.rate_limit_cooldown_ms, f.rate_limit_cooldown_max_ms, f.quota_cooldown_ms,
                      f.error_cooldown_ms, f.server_error_retries, f.backoff_ms, f.max_wait_ms,
                      f.max_in_flight, f.deadline_ms};
    j["providers"].push_back(pj);
  }
  return j;
}

std::string ErrorOf(std::string_view text, std::string_view path = "c.yaml", const EnvLookup& env = FakeEnv({})) {
  auto r = ParseConfigText(text, path, env);
  if (r) return "(loaded fine)";
  CHECK(r.error().kind == ErrorKind::kConfig);
  return r.error().message;
}

/// ConfigTempDir, plus a config file created where a test needs one.
struct TempDir : testing::ConfigTempDir {
  fs::path Touch(const fs::path& rel) const {
    fs::create_directories((path / rel).parent_path());
    std::ofstream(path / rel) << "mcp: {openai: {apiKey: x}}\n";
    return path / rel;
  }
};

// The example from SPEC §2, byte for byte.
constexpr const char* kSeed = R"({
  "mcp": {
    "openai":     { "type": "openai",     "apiKey": ["key-1", "key-2", "key-3"], "baseUrl": "https://api.openai.com/v1" },
    "openrouter": { "type": "openrouter", "apiKey": ["$OR_KEY_1", "$OR_KEY_2"],  "baseUrl": "https://openrouter.ai/api/v1" }
  }
}
)";

TEST_CASE("The SPEC example loads verbatim with both key variables set", "[unit][config]") {
  auto r = ParseConfigText(kSeed, "config.json", FakeEnv({{"OR_KEY_1", "or-one"}, {"OR_KEY_2", "or-two"}}));
  REQUIRE(r.has_value());
  const Config& c = r.value();
  CHECK(c.path == "config.json");
  REQUIRE(c.providers.size() == 2);
  CHECK(c.providers[0].name == "openai");
  CHECK(c.providers[1].name == "openrouter");
  CHECK(c.default_provider == "openai");
  CHECK(c.fallback.empty());
  CHECK(c.warnings.empty());

  const ProviderConfig& openai = c.providers[0];
  CHECK(openai.type == ProviderType::kOpenAI);
  CHECK(openai.base_url == "https://api.openai.com/v1");
  REQUIRE(openai.keys.size() == 3);
  CHECK(openai.keys[0].secret == "key-1");
  CHECK(openai.keys[2].secret == "key-3");
  CHECK(openai.keys[0].label == "openai#1");
  CHECK(openai.keys[2].label == "openai#3");
  CHECK(openai.keys[1].account.empty());

  const ProviderConfig& openrouter = c.providers[1];
  CHECK(openrouter.type == ProviderType::kOpenRouter);
  CHECK(openrouter.base_url == "https://openrouter.ai/api/v1");
  REQUIRE(openrouter.keys.size() == 2);
  CHECK(openrouter.keys[0].secret == "or-one");
  CHECK(openrouter.keys[1].secret == "or-two");
  CHECK(openrouter.keys[1].label == "openrouter#2");
  CHECK(openrouter.keys[1].disabled_reason.empty());
}

TEST_CASE("The SPEC example with OR_KEY_2 unset disables that key and warns", "[unit][config]") {
  auto r = ParseConfigText(kSeed, "config.json", FakeEnv({{"OR_KEY_1", "or-one"}}));
  REQUIRE(r.has_value());
  const ProviderConfig& openrouter = Provider(r.value(), "openrouter");
  REQUIRE(openrouter.keys.size() == 2);
  CHECK(openrouter.keys[0].secret == "or-one");
  CHECK(openrouter.keys[0].disabled_reason.empty());
  CHECK(openrouter.keys[1].secret.empty());
  CHECK(openrouter.keys[1].disabled_reason == "environment variable OR_KEY_2 is not set");
  CHECK(openrouter.keys[1].env_var == "OR_KEY_2");
  CHECK(r->env_refs == std::vector<std::string>{"OR_KEY_1", "OR_KEY_2"});
  REQUIRE(r->warnings.size() == 1);
  CHECK(r->warnings[0] ==
        "config.json:4:67: mcp.openrouter.apiKey[1]: environment variable OR_KEY_2 is not set; "
        "key openrouter#2 is disabled");
}

TEST_CASE("examples/seed.json is the SPEC example verbatim", "[unit][config]") {
  CHECK(ReadFile(fs::path(KPM_SOURCE_DIR) / "examples" / "seed.json") == kSeed);
}

TEST_CASE("Every file in examples/ loads", "[unit][config]") {
  // Any variable an example names is set, so every key loads and nothing warns.
  EnvLookup env = [](const std::string& name) -> std::optional<std::string> { return "test-" + name; };
  int loaded = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(KPM_SOURCE_DIR) / "examples")) {
    std::string ext = entry.path().extension().string();
    if (ext != ".json" && ext != ".yaml" && ext != ".yml") continue;
    INFO(entry.path().string());
    // Parsed from text: a checkout makes seed.json (literal keys) readable by all, which
    // LoadConfigFile rightly warns about; the examples are about the format.
    auto r = ParseConfigText(ReadFile(entry.path()), entry.path().string(), env);
    if (!r) FAIL(r.error().message);
    CHECK_FALSE(r->providers.empty());
    for (const std::string& w : r->warnings) WARN(w);
    CHECK(r->warnings.empty());
    ++loaded;
  }
  CHECK(loaded >= 7);
}

TEST_CASE("examples/full.yaml sets every field", "[unit][config]") {
  auto r = LoadConfigFile(std::string(KPM_SOURCE_DIR) + "/examples/full.yaml",
                          [](const std::string& n) -> std::optional<std::string> { return "v-" + n; });
  REQUIRE(r.has_value());
  CHECK(r->log_level == "info");
  CHECK(r->default_provider == "openai");
  CHECK(r->fallback == std::vector<std::string>{"openrouter"});
  CHECK(r->max_concurrent_calls == 128);
  const ProviderConfig& p = Provider(r.value(), "openai");
  REQUIRE(p.keys.size() == 4);
  CHECK(p.keys[1].secret == "v-OPENAI_KEY_2");
  CHECK(p.keys[2].label == "team");
  CHECK(p.keys[2].account == "org-team");
  CHECK(p.keys[2].base_url.empty());
  CHECK(p.keys[3].label == "reseller");
  CHECK(p.keys[3].base_url == "https://reseller.example/v1");
  CHECK(p.failover.max_in_flight == 4);
  CHECK(p.max_tokens == 2048);
  CHECK(p.headers.at("OpenAI-Project") == "proj_example");
  CHECK(Provider(r.value(), "openrouter").fallback == std::vector<std::string>{});
}

TEST_CASE("YAML and JSON forms of one config load to the same thing", "[unit][config]") {
  const char* yaml = R"(# comment
logLevel: debug
default: anth
fallback: [or]
providers:
  anth:
    type: anthropic
    apiKey:
      - $A1
      - { key: "${A2}", name: second, account: org-1 }
      - key: literal-key-3
        account: 12345
    model: claude-x
    headers: { X-One: "1", X-Two: 2 }
    strategy: round-robin
    stream: false
    timeoutMs: 1000
    firstByteTimeoutMs: 500
    idleTimeoutMs: 400
    deadlineMs: 9000
    healthCheck: true
    failover:
      rateLimitCooldownMs: 10
      rateLimitCooldownMaxMs: 20
      quotaCooldownMs: 30
      errorCooldownMs: 0
      serverErrorRetries: 3
      backoffMs: 5
      maxWaitMs: 60
      maxInFlight: 2
  or:
    type: openrouter
    apiKey: $OR
    baseUrl: https://openrouter.example/api/v1/
    fallback: anth
  local:
    type: openai-compatible
    baseUrl: http://localhost:8000/v1
    maxTokens: 100
)";
  const char* json = R"({
  "logLevel": "debug", "default": "anth", "fallback": ["or"],
  "providers": {
    "anth": {
      "type": "anthropic",
      "apiKey": ["$A1", {"key": "${A2}", "name": "second", "account": "org-1"},
                 {"key": "literal-key-3", "account": "12345"}],
      "model": "claude-x", "headers": {"X-One": "1", "X-Two": "2"},
      "strategy": "round-robin", "stream": false,
      "timeoutMs": 1000, "firstByteTimeoutMs": 500, "idleTimeoutMs": 400, "deadlineMs": 9000,
      "healthCheck": true,
      "failover": {"rateLimitCooldownMs": 10, "rateLimitCooldownMaxMs": 20, "quotaCooldownMs": 30,
                   "errorCooldownMs": 0, "serverErrorRetries": 3, "backoffMs": 5, "maxWaitMs": 60,
                   "maxInFlight": 2}
    },
    "or": {"type": "openrouter", "apiKey": "$OR", "baseUrl": "https://openrouter.example/api/v1/",
           "fallback": ["anth"]},
    "local": {"type": "openai-compatible", "baseUrl": "http://localhost:8000/v1", "maxTokens": 100}
  }
})";
  EnvLookup env = FakeEnv({{"A1", "a-one"}, {"A2", "a-two"}, {"OR", "or-key"}});
  auto from_yaml = ParseConfigText(yaml, "c.yaml", env);
  auto from_json = ParseConfigText(json, "c.json", env);
  REQUIRE(from_yaml.has_value());
  REQUIRE(from_json.has_value());
  CHECK(Dump(from_yaml.value()).dump(2) == Dump(from_json.value()).dump(2));

  // And the values are the ones written.
  const Config& c = from_yaml.value();
  CHECK(c.log_level == "debug");
  CHECK(c.default_provider == "anth");
  const ProviderConfig& anth = Provider(c, "anth");
  CHECK(anth.keys[0].secret == "a-one");
  CHECK(anth.keys[1].secret == "a-two");
  CHECK(anth.keys[1].label == "second");
  CHECK(anth.keys[1].account == "org-1");
  CHECK(anth.keys[2].label == "anth#3");
  CHECK(anth.keys[2].account == "12345");
  CHECK(anth.max_tokens == 4096);
  CHECK(anth.headers.at("X-Two") == "2");
  CHECK(anth.failover.strategy == keypool::Strategy::kRoundRobin);
  CHECK_FALSE(anth.stream);
  CHECK(anth.health_check);
  CHECK(anth.timeout_ms == 1000);
  CHECK(anth.failover.deadline_ms == 9000);
  CHECK(anth.failover.error_cooldown_ms == 0);
  CHECK(anth.failover.max_in_flight == 2);
  CHECK(anth.fallback == std::nullopt);
  const ProviderConfig& openrouter = Provider(c, "or");
  CHECK(openrouter.base_url == "https://openrouter.example/api/v1");
  CHECK(openrouter.fallback == std::vector<std::string>{"anth"});
  CHECK(Provider(c, "local").keys.empty());
  CHECK(Provider(c, "local").max_tokens == 100);
}

TEST_CASE("Omitted fields take the SPEC defaults", "[unit][config]") {
  auto r = ParseConfigText("mcp:\n  openai:\n    apiKey: k1\n  claude:\n    type: anthropic\n    apiKey: k2\n"
                           "  gemini: {apiKey: k3}\n  openrouter: {apiKey: [k4]}\n",
                           "c.yaml", FakeEnv({}));
  REQUIRE(r.has_value());
  const Config& c = r.value();
  CHECK(c.default_provider == "openai");
  CHECK_FALSE(c.log_level.has_value());
  CHECK(c.fallback.empty());
  CHECK(c.warnings.empty());

  const ProviderConfig& openai = Provider(c, "openai");
  CHECK(openai.type == ProviderType::kOpenAI);  // inferred from the name
  CHECK(openai.base_url == "https://api.openai.com/v1");
  REQUIRE(openai.keys.size() == 1);
  CHECK(openai.keys[0].label == "openai#1");
  CHECK(openai.model.empty());
  CHECK_FALSE(openai.max_tokens.has_value());
  CHECK(openai.headers.empty());
  CHECK(openai.stream);
  CHECK(openai.timeout_ms == 60000);
  CHECK(openai.first_byte_timeout_ms == 30000);
  CHECK(openai.idle_timeout_ms == 20000);
  CHECK_FALSE(openai.health_check);
  CHECK_FALSE(openai.fallback.has_value());
  const keypool::FailoverPolicy& f = openai.failover;
  CHECK(f.strategy == keypool::Strategy::kSequential);
  CHECK(f.deadline_ms == 120000);
  CHECK(f.rate_limit_cooldown_ms == 1000);
  CHECK(f.rate_limit_cooldown_max_ms == 60000);
  CHECK(f.quota_cooldown_ms == 3600000);
  CHECK(f.error_cooldown_ms == 5000);
  CHECK(f.server_error_retries == 1);
  CHECK(f.backoff_ms == 250);
  CHECK(f.max_wait_ms == 0);
  CHECK(f.max_in_flight == 0);

  const ProviderConfig& claude = Provider(c, "claude");
  CHECK(claude.type == ProviderType::kAnthropic);
  CHECK(claude.base_url == "https://api.anthropic.com/v1");
  CHECK(claude.max_tokens == 4096);
  CHECK(Provider(c, "gemini").base_url == "https://generativelanguage.googleapis.com/v1beta");
  CHECK(Provider(c, "gemini").type == ProviderType::kGemini);
  CHECK(Provider(c, "openrouter").type == ProviderType::kOpenRouter);
}

TEST_CASE("The default provider is the one named, a null field counts as omitted", "[unit][config]") {
  auto r = ParseConfigText("default: b\nlogLevel:\nmcp:\n  a: {type: openai, apiKey: x, model: }\n"
                           "  b: {type: openai, apiKey: y}\n",
                           "c.yaml", FakeEnv({}));
  REQUIRE(r.has_value());
  CHECK(r->default_provider == "b");
  CHECK_FALSE(r->log_level.has_value());
  CHECK(r->providers[0].model.empty());
}

TEST_CASE("A provider without apiKey sends no auth; a hosted one is warned about", "[unit][config]") {
  SECTION("a local openai-compatible server: no keys, no warning") {
    auto r = ParseConfigText("mcp:\n  local: {type: openai-compatible, baseUrl: 'http://127.0.0.1:8080/v1///'}\n",
                             "c.yaml", FakeEnv({}));
    REQUIRE(r.has_value());
    CHECK(r->providers[0].keys.empty());
    CHECK(r->providers[0].base_url == "http://127.0.0.1:8080/v1");
    CHECK(r->warnings.empty());
  }
  SECTION("openai at its public URL without keys: loads with a warning") {
    auto r = ParseConfigText("mcp:\n  openai: {}\n", "c.yaml", FakeEnv({}));
    REQUIRE(r.has_value());
    CHECK(r->providers[0].keys.empty());
    REQUIRE(r->warnings.size() == 1);
    CHECK_THAT(r->warnings[0], Catch::StartsWith("c.yaml:2:3: mcp.openai: no apiKey"));
  }
}

TEST_CASE("Environment references in apiKey are read as the whole value", "[unit][config]") {
  EnvLookup env = FakeEnv({{"K", "from-k"}, {"K_2", "from-k2"}, {"EMPTY", ""}, {"BLANK", "  \n"},
                           {"PADDED", "  padded-key\n"}, {"SPACED", "two words"}});
  auto load = [&](const std::string& key_yaml) {
    return ParseConfigText("mcp:\n  p:\n    type: openai\n    apiKey: [" + key_yaml + "]\n", "c.yaml", env);
  };
  struct Case {
    const char* key_yaml;
    const char* secret;
    const char* disabled_reason;
  };
  const Case cases[] = {
      {"$K", "from-k", ""},
      {"\"${K_2}\"", "from-k2", ""},
      {"'${K}'", "from-k", ""},
      {"{key: $K, name: n}", "from-k", ""},
      {"$UNSET", "", "environment variable UNSET is not set"},
      {"$EMPTY", "", "environment variable EMPTY is empty"},
      {"$BLANK", "", "environment variable BLANK is empty"},
      {"$PADDED", "padded-key", ""},
      {"$SPACED", "", "environment variable SPACED contains spaces or control characters"},
      {"literal$notavar", "literal$notavar", ""},
      {"'key-with-${K}-inside'", "key-with-${K}-inside", ""},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.key_yaml) {
      auto r = load(c.key_yaml);
      if (!r) FAIL(r.error().message);
      const keypool::KeySpec& key = r->providers[0].keys.at(0);
      CHECK(key.secret == c.secret);
      CHECK(key.disabled_reason == c.disabled_reason);
      CHECK(r->warnings.size() == (*c.disabled_reason ? 1u : 0u));
    }
  }
  SECTION("a disabled key leaves the others working") {
    auto r = load("$UNSET, $K");
    REQUIRE(r.has_value());
    CHECK(r->providers[0].keys[0].disabled_reason != "");
    CHECK(r->providers[0].keys[1].secret == "from-k");
    CHECK(r->providers[0].keys[1].disabled_reason == "");
  }
  SECTION("the same key twice loads with a warning") {
    auto r = load("$K, literal, $K");
    REQUIRE(r.has_value());
    REQUIRE(r->warnings.size() == 1);
    CHECK_THAT(r->warnings[0], Catch::Contains("apiKey[2]: the same key as mcp.p.apiKey[0] (p#1)"));
    CHECK_THAT(r->warnings[0], !Catch::Contains("from-k"));
  }
}

struct ErrorCase {
  const char* name;
  const char* file;
  const char* text;
  const char* want;  ///< a substring of the message, location included
};

TEST_CASE("Each config mistake is one message naming file, position and field", "[unit][config]") {
  const ErrorCase cases[] = {
      // Syntax.
      {"YAML syntax", "c.yaml", "mcp: [1, 2\nx: 3\n", "c.yaml:2:2: YAML syntax error: end of sequence flow not found"},
      {"JSON syntax", "c.json", "{\n  \"mcp\": {,}\n}\n", "c.json:2:11: syntax error while parsing object key"},
      {"JSON trailing comma", "c.json", "{\"mcp\": {\"openai\": {\"apiKey\": \"x\"},}}",
       "c.json:1:36: syntax error while parsing object key - unexpected '}'; expected string literal"},
      {"JSON by content", "config", "{\"mcp\": }", "config:1:9: syntax error while parsing value"},
      {"empty file", "c.yaml", "", "c.yaml: the file is empty"},
      {"comments only", "c.yaml", "# nothing\n", "c.yaml: the file is empty"},
      {"two documents", "c.yaml", "mcp: {}\n---\nmcp: {}\n", "c.yaml:2:1: more than one YAML document"},
      {"an empty second document", "c.yaml", "mcp: {openai: {}}\n---\n", "c.yaml:2:1: more than one YAML document"},
      {"recursive alias", "c.yaml", "a: &x [*x]\n", "nested too deeply"},
      {"duplicate provider", "c.yaml", "mcp:\n  a: {apiKey: x}\n  a: {apiKey: y}\n",
       "c.yaml:3:3: mcp: duplicate key \"a\" (first at line 2)"},
      {"duplicate JSON key", "c.json", "{\"mcp\": {\"openai\": {}, \"openai\": {}}}",
       "c.json:1:24: mcp: duplicate key \"openai\""},
      // Top level.
      {"top level not a map", "c.yaml", "- a\n", "c.yaml:1:1: expected a map at the top level, got a list"},
      {"no providers", "c.yaml", "logLevel: info\n", "c.yaml:1:1: no providers: add a \"mcp\" (or \"providers\") map"},
      {"both mcp and providers", "c.yaml", "mcp: {a: {type: openai}}\nproviders: {b: {type: openai}}\n",
       "c.yaml:2:12: both \"mcp\" and \"providers\" are given"},
      {"empty providers map", "c.yaml", "providers: {}\n", "c.yaml:1:12: providers: no providers"},
      {"providers as a list", "c.yaml", "mcp: [openai]\n", "c.yaml:1:6: mcp: expected a map of provider names to settings, got a list"},
      {"unknown top field with hint", "c.yaml", "mcp: {openai: {}}\nlog_level: info\n",
       "c.yaml:2:1: unknown field \"log_level\" — did you mean \"logLevel\"?"},
      {"provider at the top level", "c.yaml", "openai: {apiKey: x}\n",
       "c.yaml:1:1: unknown field \"openai\" — providers go under \"mcp\" (or \"providers\")"},
      {"provider field at the top level", "c.yaml", "mcp: {openai: {}}\nmodel: x\n",
       "c.yaml:2:1: unknown field \"model\" — \"model\" is a provider field: put it under mcp.<provider>"},
      {"unknown top field without hint", "c.yaml", "mcp: {openai: {}}\nzzz: 1\n",
       "unknown field \"zzz\" (known fields: mcp, providers, default, fallback, logLevel, maxConcurrentCalls, state, $schema)"},
      {"maxConcurrentCalls zero", "c.yaml", "mcp: {openai: {}}\nmaxConcurrentCalls: 0\n", "c.yaml:2:21: maxConcurrentCalls:"},
      {"maxConcurrentCalls not a number", "c.yaml", "mcp: {openai: {}}\nmaxConcurrentCalls: many\n",
       "c.yaml:2:21: maxConcurrentCalls:"},
      {"bad logLevel", "c.yaml", "mcp: {openai: {}}\nlogLevel: verbose\n",
       "c.yaml:2:11: logLevel: unknown log level \"verbose\" (valid: trace, debug, info, warn, error, off)"},
      {"logLevel in capitals", "c.yaml", "mcp: {openai: {}}\nlogLevel: WARN\n", "did you mean \"warn\"?"},
      {"logLevel not a string", "c.yaml", "mcp: {openai: {}}\nlogLevel: 3\n",
       "logLevel: expected one of trace, debug, info, warn, error, off, got a number"},
      {"default names no provider", "c.yaml", "default: opneai\nmcp: {openai: {}}\n",
       "c.yaml:1:10: default: no provider named \"opneai\" — did you mean \"openai\"? (providers: openai)"},
      {"default is a list", "c.yaml", "default: [openai]\nmcp: {openai: {}}\n",
       "c.yaml:1:10: default: expected a provider name, got a list"},
      {"fallback names no provider", "c.yaml", "fallback: [openai, nope]\nmcp: {openai: {}}\n",
       "c.yaml:1:20: fallback[1]: no provider named \"nope\""},
      {"fallback lists one twice", "c.yaml", "fallback: [a, a]\nmcp: {a: {type: openai}}\n",
       "c.yaml:1:15: fallback[1]: \"a\" is listed twice"},
      {"fallback is a map", "c.yaml", "fallback: {a: 1}\nmcp: {a: {type: openai}}\n",
       "c.yaml:1:11: fallback: expected a list of provider names, got a map"},
      {"fallback item not a string", "c.yaml", "fallback: [[a]]\nmcp: {a: {type: openai}}\n",
       "fallback[0]: expected a provider name, got a list"},
      // Providers.
      {"provider body not a map", "c.yaml", "mcp:\n  openai: sk-x\n",
       "c.yaml:2:11: mcp.openai: expected a map of provider settings, got a string"},
      {"provider name with a space", "c.json", "{\"mcp\": {\"my provider\": {\"type\": \"openai\"}}}",
       "c.json:1:10: mcp.my provider: a provider name must be 1 to 64 visible characters"},
      {"unknown type", "c.yaml", "mcp:\n  x:\n    type: open-ai\n",
       "c.yaml:3:11: mcp.x.type: unknown provider type \"open-ai\" — did you mean \"openai\"? (valid: openai, "
       "openrouter, anthropic, gemini, openai-compatible)"},
      {"type not a string", "c.yaml", "mcp:\n  x:\n    type: [openai]\n", "mcp.x.type: expected one of openai"},
      {"type omitted, name unknown", "c.yaml", "mcp:\n  groq:\n    apiKey: x\n",
       "c.yaml:2:3: mcp.groq: missing \"type\" (one of openai, openrouter, anthropic, gemini, openai-compatible)"},
      {"unknown provider field", "c.yaml", "mcp:\n  openai:\n    baseURL: https://x\n",
       "c.yaml:3:5: mcp.openai: unknown field \"baseURL\" — did you mean \"baseUrl\"?"},
      {"unknown provider field in JSON", "c.json", "{\n  \"mcp\": {\n    \"openai\": {\"apikey\": \"x\"}\n  }\n}",
       "c.json:3:16: mcp.openai: unknown field \"apikey\" — did you mean \"apiKey\"?"},
      {"timeout without Ms", "c.yaml", "mcp:\n  openai:\n    timeout: 5\n", "did you mean \"timeoutMs\"?"},
      {"failover field at provider level", "c.yaml", "mcp:\n  openai:\n    backoffMs: 5\n",
       "c.yaml:3:5: mcp.openai: unknown field \"backoffMs\" — \"backoffMs\" belongs in the \"failover\" block"},
      {"openai-compatible without baseUrl", "c.yaml", "mcp:\n  local:\n    type: openai-compatible\n",
       "c.yaml:2:3: mcp.local: \"baseUrl\" is required for type openai-compatible"},
      {"baseUrl without scheme", "c.yaml", "mcp:\n  openai:\n    baseUrl: api.openai.com/v1\n",
       "c.yaml:3:14: mcp.openai.baseUrl: must start with http:// or https://"},
      {"baseUrl a list", "c.yaml", "mcp:\n  openai:\n    baseUrl: [a]\n",
       "mcp.openai.baseUrl: expected a string, got a list"},
      {"baseUrl empty", "c.yaml", "mcp:\n  openai:\n    baseUrl: ''\n", "mcp.openai.baseUrl: must not be empty"},
      {"model a map", "c.yaml", "mcp:\n  openai:\n    model: {a: 1}\n", "mcp.openai.model: expected a string, got a map"},
      {"maxTokens zero", "c.yaml", "mcp:\n  openai:\n    maxTokens: 0\n",
       "c.yaml:3:16: mcp.openai.maxTokens: must be at least 1"},
      {"maxTokens a string", "c.yaml", "mcp:\n  openai:\n    maxTokens: a lot\n",
       "mcp.openai.maxTokens: expected a whole number, got a string"},
      {"maxTokens quoted in JSON", "c.json", "{\"mcp\": {\"openai\": {\"maxTokens\": \"100\"}}}",
       "c.json:1:34: mcp.openai.maxTokens: expected a whole number, got a string"},
      {"maxTokens a fraction", "c.yaml", "mcp:\n  openai:\n    maxTokens: 1.5\n",
       "mcp.openai.maxTokens: expected a whole number, got a number"},
      {"maxTokens too large", "c.yaml", "mcp:\n  openai:\n    maxTokens: 99999999999\n",
       "mcp.openai.maxTokens: too large (at most 2147483647)"},
      {"timeoutMs negative", "c.yaml", "mcp:\n  openai:\n    timeoutMs: -5\n", "mcp.openai.timeoutMs: must be at least 1"},
      {"idleTimeoutMs zero", "c.yaml", "mcp:\n  openai:\n    idleTimeoutMs: 0\n", "mcp.openai.idleTimeoutMs: must be at least 1"},
      {"deadlineMs huge", "c.yaml", "mcp:\n  openai:\n    deadlineMs: 99999999999999999999\n",
       "mcp.openai.deadlineMs: too large"},
      {"stream as yes", "c.yaml", "mcp:\n  openai:\n    stream: yes\n",
       "c.yaml:3:13: mcp.openai.stream: expected true or false, got a string"},
      {"healthCheck as 1", "c.json", "{\"mcp\": {\"openai\": {\"healthCheck\": 1}}}",
       "mcp.openai.healthCheck: expected true or false, got a number"},
      {"bad strategy", "c.yaml", "mcp:\n  openai:\n    strategy: round_robin\n",
       "c.yaml:3:15: mcp.openai.strategy: unknown strategy \"round_robin\" — did you mean \"round-robin\"? "
       "(valid: sequential, round-robin, sticky)"},
      {"headers a list", "c.yaml", "mcp:\n  openai:\n    headers: [a]\n",
       "mcp.openai.headers: expected a map of header names to values, got a list"},
      {"header value a map", "c.yaml", "mcp:\n  openai:\n    headers: {X-A: {b: 1}}\n",
       "mcp.openai.headers.X-A: expected a string, got a map"},
      {"header name with a space", "c.json", "{\"mcp\": {\"openai\": {\"headers\": {\"X A\": \"b\"}}}}",
       "c.json:1:33: mcp.openai.headers: not a valid HTTP header name: \"X A\""},
      {"header given twice", "c.yaml", "mcp:\n  openai:\n    headers: {X-A: 1, x-a: 2}\n",
       "mcp.openai.headers: header \"x-a\" is given twice (also \"X-A\")"},
      {"header value with a line break", "c.json", "{\"mcp\": {\"openai\": {\"headers\": {\"X-A\": \"a\\r\\nB: c\"}}}}",
       "mcp.openai.headers.X-A: a header value cannot contain line breaks"},
      {"provider falls back to itself", "c.yaml", "mcp:\n  a: {type: openai, fallback: [b, a]}\n  b: {type: openai}\n",
       "c.yaml:2:35: mcp.a.fallback[1]: a provider cannot fall back to itself"},
      {"provider fallback names no provider", "c.yaml", "mcp:\n  a: {type: openai, fallback: c}\n",
       "c.yaml:2:31: mcp.a.fallback: no provider named \"c\""},
      // Keys.
      {"apiKey element a number", "config.yaml", "mcp:\n  openrouter:\n    apiKey:\n      - $A\n      - 7\n",
       "config.yaml:5:9: mcp.openrouter.apiKey[1]: expected a string or an object {key, name, account, baseUrl}, got "
       "a number"},
      {"apiKey a map without key", "c.yaml", "mcp:\n  openai:\n    apiKey: {name: x}\n",
       "c.yaml:3:13: mcp.openai.apiKey: missing \"key\""},
      {"apiKey object key a number", "c.yaml", "mcp:\n  openai:\n    apiKey: [{key: 5}]\n",
       "c.yaml:3:20: mcp.openai.apiKey[0].key: expected a string (the key or $VARIABLE), got a number"},
      {"apiKey object unknown field", "c.yaml", "mcp:\n  openai:\n    apiKey: [{key: x, label: y}]\n",
       "c.yaml:3:23: mcp.openai.apiKey[0]: unknown field \"label\" (a key object has: key, keyFile, keyCommand, name, account, baseUrl, limits)"},
      {"apiKey object name typo", "c.yaml", "mcp:\n  openai:\n    apiKey: [{key: x, nmae: y}]\n",
       "unknown field \"nmae\" — did you mean \"name\"?"},
      {"apiKey object empty name", "c.yaml", "mcp:\n  openai:\n    apiKey: [{key: x, name: ''}]\n",
       "mcp.openai.apiKey[0].name: must not be empty"},
      {"apiKey empty list", "c.yaml", "mcp:\n  openai:\n    apiKey: []\n", "mcp.openai.apiKey: an empty list"},
      {"apiKey empty string", "c.yaml", "mcp:\n  openai:\n    apiKey: [a, \"\"]\n",
       "c.yaml:3:17: mcp.openai.apiKey[1]: an empty key"},
      {"apiKey broken variable", "c.yaml", "mcp:\n  openai:\n    apiKey: \"${OR_KEY\"\n",
       "mcp.openai.apiKey: not an environment variable reference: write $NAME or ${NAME}"},
      {"apiKey variable with a dash", "c.yaml", "mcp:\n  openai:\n    apiKey: $OR-KEY\n",
       "mcp.openai.apiKey: not an environment variable reference"},
      {"apiKey with a space", "c.yaml", "mcp:\n  openai:\n    apiKey: 'sk a'\n",
       "mcp.openai.apiKey: the key contains spaces or control characters"},
      {"duplicate key name", "c.yaml", "mcp:\n  openai:\n    apiKey: [{key: a, name: x}, {key: b, name: x}]\n",
       "c.yaml:3:33: mcp.openai.apiKey[1]: duplicate key name \"x\" (also mcp.openai.apiKey[0])"},
      {"name clashes with a default label", "c.yaml", "mcp:\n  p:\n    type: openai\n    apiKey: [{key: a, name: 'p#2'}, b]\n",
       "mcp.p.apiKey[1]: duplicate key name \"p#2\" (also mcp.p.apiKey[0])"},
      // Failover.
      {"failover not a map", "c.yaml", "mcp:\n  openai:\n    failover: 5\n",
       "mcp.openai.failover: expected a map of failover settings, got a number"},
      {"unknown failover field", "c.yaml", "mcp:\n  openai:\n    failover: {backof: 5}\n",
       "c.yaml:3:16: mcp.openai.failover: unknown field \"backof\" — did you mean \"backoffMs\"?"},
      {"provider field in failover", "c.yaml", "mcp:\n  openai:\n    failover: {strategy: round-robin}\n",
       "unknown field \"strategy\" — \"strategy\" is a provider field, not a failover one"},
      {"negative backoff", "c.yaml", "mcp:\n  openai:\n    failover: {backoffMs: -1}\n",
       "mcp.openai.failover.backoffMs: must not be negative"},
      {"zero rate-limit cooldown", "c.yaml", "mcp:\n  openai:\n    failover: {rateLimitCooldownMs: 0}\n",
       "mcp.openai.failover.rateLimitCooldownMs: must be at least 1"},
      {"maxInFlight zero", "c.yaml", "mcp:\n  openai:\n    failover: {maxInFlight: 0}\n",
       "mcp.openai.failover.maxInFlight: must be at least 1"},
      {"negative retries", "c.yaml", "mcp:\n  openai:\n    failover: {serverErrorRetries: -1}\n",
       "mcp.openai.failover.serverErrorRetries: must not be negative"},
      {"cooldown cap below the first cooldown", "c.yaml",
       "mcp:\n  openai:\n    failover: {rateLimitCooldownMs: 5000, rateLimitCooldownMaxMs: 100}\n",
       "c.yaml:3:67: mcp.openai.failover.rateLimitCooldownMaxMs: rateLimitCooldownMaxMs (100) is below "
       "rateLimitCooldownMs (5000)"},
      {"first cooldown above the default cap", "c.yaml", "mcp:\n  openai:\n    failover: {rateLimitCooldownMs: 90000}\n",
       "mcp.openai.failover.rateLimitCooldownMs: rateLimitCooldownMaxMs (60000) is below"},
  };
  for (const ErrorCase& c : cases) {
    DYNAMIC_SECTION(c.name) {
      CHECK_THAT(ErrorOf(c.text, c.file), Catch::Contains(c.want));
    }
  }
}

TEST_CASE("Error messages never quote key material", "[unit][config]") {
  const std::string canary = "sk-proj-CANARY0123456789abcdefghijklmnop";
  const std::string cases[] = {
      "mcp:\n  openai:\n    " + canary + ": 1\n",                        // a key pasted as a field name
      "mcp:\n  openai:\n    apiKey: [{key: x, " + canary + ": 1}]\n",    // ... inside a key object
      "mcp:\n  openai:\n    type: " + canary + "\n",                     // as a type
      "mcp:\n  openai:\n    apiKey: '" + canary + " '\n",                // with a stray space
      "mcp:\n  openai:\n    apiKey: '$" + canary + "'\n",                // behind a $
      canary + ":\n  x: 1\n",                                            // at the top
  };
  for (const std::string& text : cases) {
    std::string message = ErrorOf(text);
    CHECK_THAT(message, !Catch::Contains("CANARY"));
    CHECK(message != "(loaded fine)");
  }
  // nlohmann echoes the text it last read in a syntax error: it must be cut.
  std::string json_message = ErrorOf("{\"mcp\": {\"openai\": {\"apiKey\": \"" + canary + "\n\"}}}", "c.json");
  CHECK_THAT(json_message, Catch::StartsWith("c.json:1:72: syntax error"));
  CHECK_THAT(json_message, !Catch::Contains("CANARY"));
  // An unset variable's warning names the variable, never a value.
  auto r = ParseConfigText("mcp: {openai: {apiKey: [" + canary + ", $GONE]}}", "c.yaml", FakeEnv({}));
  REQUIRE(r.has_value());
  for (const std::string& w : r->warnings) CHECK_THAT(w, !Catch::Contains("CANARY"));
}

TEST_CASE("The format follows the extension, else the content", "[unit][config]") {
  const char* yaml = "mcp:\n  openai: {apiKey: x}\n";
  const char* json = "{\"mcp\": {\"openai\": {\"apiKey\": \"x\"}}}";
  CHECK(ParseConfigText(yaml, "c.yml", FakeEnv({})).has_value());
  CHECK(ParseConfigText(yaml, "config", FakeEnv({})).has_value());
  CHECK(ParseConfigText(json, "config", FakeEnv({})).has_value());
  CHECK(ParseConfigText(json, "c.YAML", FakeEnv({})).has_value());  // JSON is YAML
  CHECK(ParseConfigText(json, "c.JSON", FakeEnv({})).has_value());
  // A .json file must be JSON: YAML in it is a JSON syntax error.
  CHECK_THAT(ErrorOf(yaml, "c.json"), Catch::StartsWith("c.json:1:1: syntax error while parsing value"));
}

TEST_CASE("Valid JSON that yaml-cpp cannot read still loads, without positions", "[unit][config]") {
  // yaml-cpp rejects UTF-16 surrogate pairs, which JSON allows.
  const char* ok = R"({"mcp": {"openai": {"apiKey": "x", "headers": {"X-Emoji": "\ud83d\ude00"}}}})";
  auto r = ParseConfigText(ok, "c.json", FakeEnv({}));
  if (!r) FAIL(r.error().message);
  CHECK(r->providers[0].headers.at("X-Emoji") == "\xF0\x9F\x98\x80");
  CHECK(r->providers[0].keys[0].secret == "x");

  const char* bad = R"({"mcp": {"openai": {"model": "\ud83d\ude00", "baseURL": "x"}}})";
  CHECK(ErrorOf(bad, "c.json") == "c.json: mcp.openai: unknown field \"baseURL\" — did you mean \"baseUrl\"?");
}

// yaml-cpp 0.7.0's LoadAll never returned on these (jbeder/yaml-cpp#1040): it allocated
// until the machine ran out of memory, so the server hung at start-up.
TEST_CASE("A stray ',' in YAML is an error at its position, not a hang", "[unit][config]") {
  const ErrorCase cases[] = {
      {"lone comma", "c.yaml", ",", "c.yaml:1:1: YAML syntax error: unexpected ','"},
      {"lone comma, sniffed", "config", ",\n", "config:1:1: YAML syntax error: unexpected ','"},
      {"after a list", "c.yaml", "- a\n,", "c.yaml:2:1: YAML syntax error: unexpected ','"},
      {"after a flow list", "c.yml", "[a]\n,", "c.yml:2:1: YAML syntax error: unexpected ','"},
      {"after an anchor", "c.yaml", "&x ,", "c.yaml:1:4: YAML syntax error: unexpected ','"},
      {"after a quoted scalar", "c.yaml", "\"\",", "c.yaml:1:3: YAML syntax error: unexpected ','"},
      {"after a whole config", "c.yaml", "mcp: {openai: {apiKey: x}}\n,\n", "c.yaml:2:1: YAML syntax error"},
      {"in a .json file", "c.json", ",", "c.json:1:1: syntax error while parsing value"},
  };
  for (const ErrorCase& c : cases) {
    DYNAMIC_SECTION(c.name) {
      CHECK_THAT(ErrorOf(c.text, c.file), Catch::StartsWith(c.want));
    }
  }
}

/// A fuzz_config reproducer as the fuzzer feeds it: the first byte picks the path.
std::pair<std::string, std::string> FuzzReproducer(const char* name) {
  static const char* kPaths[] = {"config.yaml", "config.json", "keypool-config", "conf.YML"};
  std::string input = ReadFile(fs::path(KPM_SOURCE_DIR) / "fuzz" / "crashes" / "fuzz_config" / name);
  REQUIRE_FALSE(input.empty());
  return {kPaths[static_cast<unsigned char>(input[0]) % 4], input.substr(1)};
}

TEST_CASE("The fuzz_config reproducers give config errors", "[unit][config]") {
  SECTION("yaml-loadall-lone-comma") {
    auto [path, text] = FuzzReproducer("yaml-loadall-lone-comma");
    CHECK(ErrorOf(text, path) == path + ":1:1: YAML syntax error: unexpected ',' (a comma separates items only "
                                        "inside [...] or {...})");
  }
  SECTION("yaml-loadall-found-by-fuzzer") {
    auto [path, text] = FuzzReproducer("yaml-loadall-found-by-fuzzer");
    CHECK_THAT(ErrorOf(text, path), Catch::StartsWith(path + ":"));
  }
  SECTION("deep-json-fromjson-50000") {
    auto [path, text] = FuzzReproducer("deep-json-fromjson-50000");
    CHECK_THAT(ErrorOf(text, path), Catch::StartsWith(path + ":1:") && Catch::EndsWith(": nested more than 64 levels deep"));
  }
}

TEST_CASE("Deeply nested JSON is refused before it is parsed", "[unit][config]") {
  auto nested = [](int levels) {
    return "{\"mcp\": " + std::string(levels, '[') + std::string(levels, ']') + "}";
  };
  // The '{' is the first level, so the 64th '[' (column 72) opens the 65th: one too many.
  CHECK(ErrorOf(nested(63), "c.json") != "(loaded fine)");
  CHECK_THAT(ErrorOf(nested(63), "c.json"), !Catch::Contains("nested"));
  CHECK(ErrorOf(nested(64), "c.json") == "c.json:1:72: nested more than 64 levels deep");
  CHECK(ErrorOf(nested(50000), "c.json") == "c.json:1:72: nested more than 64 levels deep");
  CHECK(ErrorOf(nested(50000), "config") == "config:1:72: nested more than 64 levels deep");
  // Within the limit it is an ordinary type error.
  CHECK_THAT(ErrorOf(nested(60), "c.json"), Catch::Contains("mcp: expected a map of provider names"));
  // Brackets inside strings (escaped quotes too) are text, not nesting.
  std::string deep_text = "{\"mcp\": {\"openai\": {\"apiKey\": \"\\\"" + std::string(100, '[') + "\", "
                          "\"model\": \"" + std::string(100, '{') + "\"}}}";
  auto r = ParseConfigText(deep_text, "c.json", FakeEnv({}));
  if (!r) FAIL(r.error().message);
  CHECK(r->providers[0].model == std::string(100, '{'));
}

TEST_CASE("Document markers yaml-cpp reads as content do not count as documents", "[unit][config]") {
  auto r = ParseConfigText(
      "---\nmcp:\n  openai:\n    apiKey: x\n    model: >-\n      a\n      ---\n      ...\n...\n", "c.yaml",
      FakeEnv({}));
  if (!r) FAIL(r.error().message);
  CHECK(r->providers[0].model == "a --- ...");
}

TEST_CASE("LoadConfigFile reports a missing file or a directory", "[unit][config]") {
  TempDir dir;
  auto missing = LoadConfigFile((dir.path / "nope.yaml").string(), FakeEnv({}));
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().kind == ErrorKind::kNotFound);
  CHECK_THAT(missing.error().message, Catch::EndsWith("nope.yaml: no such file"));

  auto directory = LoadConfigFile(dir.path.string(), FakeEnv({}));
  REQUIRE_FALSE(directory.has_value());
  CHECK_THAT(directory.error().message, Catch::Contains("is a directory"));

  fs::path file = dir.Touch("a/config.yaml");
  auto loaded = LoadConfigFile(file.string(), FakeEnv({}));
  REQUIRE(loaded.has_value());
  CHECK(loaded->path == file.string());
}

TEST_CASE("FindConfigPath looks in the documented order", "[unit][config]") {
  TempDir dir;
  const fs::path home = dir.path / "home";
  const fs::path xdg = dir.path / "xdg";
  fs::create_directories(home);
  std::map<std::string, std::string> vars = {{"HOME", home.string()}};
  auto find = [&](std::optional<std::string> flag = std::nullopt) { return FindConfigPath(flag, FakeEnv(vars)); };

  SECTION("nothing anywhere: the error lists every place looked") {
    vars["XDG_CONFIG_HOME"] = xdg.string();
    auto r = find();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == ErrorKind::kNotFound);
    const std::string& m = r.error().message;
    CHECK_THAT(m, Catch::Contains("--config (not given)"));
    CHECK_THAT(m, Catch::Contains("$KEYPOOL_CONFIG (not set)"));
    for (const fs::path& base : {xdg / "keypool-mcp", home / ".config" / "keypool-mcp"}) {
      for (const char* name : {"config.yaml", "config.yml", "config.json"}) {
        CHECK_THAT(m, Catch::Contains((base / name).string()));
      }
    }
  }
  SECTION("~/.config is the last resort, yaml before yml before json") {
    dir.Touch("home/.config/keypool-mcp/config.json");
    CHECK(find().value() == (home / ".config/keypool-mcp/config.json").string());
    dir.Touch("home/.config/keypool-mcp/config.yml");
    CHECK(find().value() == (home / ".config/keypool-mcp/config.yml").string());
    dir.Touch("home/.config/keypool-mcp/config.yaml");
    CHECK(find().value() == (home / ".config/keypool-mcp/config.yaml").string());
  }
  SECTION("$XDG_CONFIG_HOME beats ~/.config") {
    dir.Touch("home/.config/keypool-mcp/config.yaml");
    dir.Touch("xdg/keypool-mcp/config.json");
    vars["XDG_CONFIG_HOME"] = xdg.string();
    CHECK(find().value() == (xdg / "keypool-mcp/config.json").string());
  }
  SECTION("a relative $XDG_CONFIG_HOME is ignored") {
    dir.Touch("home/.config/keypool-mcp/config.yaml");
    vars["XDG_CONFIG_HOME"] = "relative/dir";
    CHECK(find().value() == (home / ".config/keypool-mcp/config.yaml").string());
  }
  SECTION("$KEYPOOL_CONFIG beats the XDG places") {
    dir.Touch("xdg/keypool-mcp/config.yaml");
    fs::path chosen = dir.Touch("elsewhere/my.json");
    vars["XDG_CONFIG_HOME"] = xdg.string();
    vars["KEYPOOL_CONFIG"] = chosen.string();
    CHECK(find().value() == chosen.string());
    SECTION("and --config beats $KEYPOOL_CONFIG") {
      fs::path flag = dir.Touch("flag.yaml");
      CHECK(find(flag.string()).value() == flag.string());
    }
  }
  SECTION("an empty $KEYPOOL_CONFIG counts as unset") {
    dir.Touch("home/.config/keypool-mcp/config.yaml");
    vars["KEYPOOL_CONFIG"] = "";
    CHECK(find().value() == (home / ".config/keypool-mcp/config.yaml").string());
  }
  SECTION("a named file that does not exist is an error, not a fall-through") {
    dir.Touch("home/.config/keypool-mcp/config.yaml");
    auto by_flag = find((dir.path / "missing.yaml").string());
    REQUIRE_FALSE(by_flag.has_value());
    CHECK_THAT(by_flag.error().message, Catch::Contains("missing.yaml (from --config) does not exist"));
    vars["KEYPOOL_CONFIG"] = (dir.path / "gone.json").string();
    auto by_env = find();
    REQUIRE_FALSE(by_env.has_value());
    CHECK_THAT(by_env.error().message, Catch::Contains("gone.json (from $KEYPOOL_CONFIG) does not exist"));
    auto a_directory = find(dir.path.string());
    REQUIRE_FALSE(a_directory.has_value());
    CHECK_THAT(a_directory.error().message, Catch::Contains("is not a file"));
  }
  SECTION("no HOME and no XDG: says so") {
    vars.clear();
    auto r = find();
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(r.error().message, Catch::Contains("$HOME (not set)"));
    CHECK_THAT(r.error().message, Catch::Contains("$XDG_CONFIG_HOME (not set)"));
  }
}

TEST_CASE("ProcessEnv reads the real environment", "[unit][config]") {
  ::setenv("KPM_CONFIG_TEST_VAR", "value-1", 1);
  ::unsetenv("KPM_CONFIG_TEST_UNSET");
  EnvLookup env = ProcessEnv();
  CHECK(env("KPM_CONFIG_TEST_VAR") == std::optional<std::string>("value-1"));
  CHECK_FALSE(env("KPM_CONFIG_TEST_UNSET").has_value());
}

}  // namespace
}  // namespace kpm::server

namespace kpm::server {
namespace {

TEST_CASE("state limits and sticky load and their mistakes are named", "[unit][config]") {
  auto env = FakeEnv({{"HOME", "/home/u"}});
  SECTION("the default is one sqlite file under XDG_STATE_HOME or HOME") {
    auto r = ParseConfigText("providers:\n  openai: {}\n", "c.yaml", env);
    REQUIRE(r);
    CHECK(r->state.type == state::StoreType::kSqlite);
    CHECK(r->state.path == "/home/u/.local/state/keypool-mcp/state.db");
    auto x = ParseConfigText("providers:\n  openai: {}\n", "c.yaml",
                             FakeEnv({{"HOME", "/home/u"}, {"XDG_STATE_HOME", "/xdg"}}));
    REQUIRE(x);
    CHECK(x->state.path == "/xdg/keypool-mcp/state.db");
  }
  SECTION("none, a sqlite path and a redis url with a prefix") {
    auto none = ParseConfigText("state: none\nproviders:\n  openai: {}\n", "c.yaml", env);
    REQUIRE(none);
    CHECK(none->state.type == state::StoreType::kNone);
    auto file = ParseConfigText("state: {type: sqlite, path: ~/s.db}\nproviders:\n  openai: {}\n", "c.yaml", env);
    REQUIRE(file);
    CHECK(file->state.path == "/home/u/s.db");
    auto redis = ParseConfigText(
        "state: {type: redis, url: \"redis://:pw@10.0.0.5:6380/2\", prefix: team}\nproviders:\n  openai: {}\n",
        "c.yaml", env);
    REQUIRE(redis);
    CHECK(redis->state.type == state::StoreType::kRedis);
    CHECK(redis->state.prefix == "team");
  }
  SECTION("limits: the provider's are each key's unless a key has its own") {
    auto r = ParseConfigText(
        "providers:\n  openai:\n    limits: {rpm: 60, tpm: 1000}\n    apiKey:\n      - k1-abcdefghijkl\n"
        "      - {key: k2-abcdefghijkl, limits: {rpd: 5}}\n",
        "c.yaml", env);
    REQUIRE(r);
    const auto& keys = r->providers[0].keys;
    CHECK(keys[0].limits.rpm == 60);
    CHECK(keys[0].limits.tpm == 1000);
    CHECK(keys[1].limits.rpm == 0);
    CHECK(keys[1].limits.rpd == 5);
  }
  SECTION("mistakes") {
    CHECK_THAT(ErrorOf("state: redis\nproviders:\n  openai: {}\n"), Catch::Contains("state: redis needs a url"));
    CHECK_THAT(ErrorOf("state: {type: redis, url: \"http://x\"}\nproviders:\n  openai: {}\n"),
               Catch::Contains("state.url"));
    CHECK_THAT(ErrorOf("state: {type: sqlite, path: rel.db}\nproviders:\n  openai: {}\n"),
               Catch::Contains("state.path: must be an absolute path"));
    CHECK_THAT(ErrorOf("state: disk\nproviders:\n  openai: {}\n"), Catch::Contains("unknown state store"));
    CHECK_THAT(ErrorOf("providers:\n  openai:\n    limits: {rpm: 0}\n"), Catch::Contains("providers.openai.limits.rpm: must be at least 1"));
    CHECK_THAT(ErrorOf("providers:\n  openai:\n    limits: {rph: 3}\n"), Catch::Contains("unknown field"));
    CHECK_THAT(ErrorOf("state: none\nproviders:\n  openai:\n    strategy: sticky\n"),
               Catch::Contains("strategy sticky needs shared state"));
  }
}

}  // namespace
}  // namespace kpm::server

namespace kpm::server {
namespace {

TEST_CASE("A top-level $schema string is accepted and ignored in JSON and YAML", "[unit][config][schema]") {
  auto env = [](const std::string&) -> std::optional<std::string> { return "v"; };
  auto json = ParseConfigText(R"({"$schema": "./config.schema.json", "providers": {"openai": {"apiKey": "$K"}}})",
                              "c.json", env);
  if (!json) FAIL(json.error().message);
  auto yaml = ParseConfigText("# yaml-language-server: $schema=config.schema.json\n$schema: https://x.example/s.json\n"
                              "providers: {openai: {apiKey: $K}}\n",
                              "c.yaml", env);
  if (!yaml) FAIL(yaml.error().message);
  auto plain = ParseConfigText("providers: {openai: {apiKey: $K}}\n", "c.yaml", env);
  REQUIRE(plain.has_value());
  CHECK(Dump(json.value()) == Dump(plain.value()));
  CHECK(Dump(yaml.value()) == Dump(plain.value()));
}

TEST_CASE("A top-level $schema that is not a string is an error naming it", "[unit][config][schema]") {
  auto r = ParseConfigText("$schema: [a]\nproviders: {openai: {}}\n", "c.yaml", nullptr);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message == "c.yaml:1:10: $schema: expected a string (the URL or path of the config's JSON Schema), got a list");
}

}  // namespace
}  // namespace kpm::server
