// The config's JSON Schema (server/config_schema.h) checked with a real validator,
// valijson (Debian libvalijson-dev, header-only), against the examples and against the
// loader itself: what the loader refuses the schema refuses, and the two know the same
// fields.
#include "server/config_schema.h"
#include "tests/unit/server_config/config_test_util.h"

#include <catch2/catch.hpp>

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "server/config.h"
#include "server/config_document.h"

namespace kpm::server {
namespace {

using testing::ReadFile;

namespace fs = std::filesystem;
using Json = nlohmann::json;

/// The schema parsed once by valijson (draft 7: the newest valijson 1.0 knows; the
/// schema keeps to keywords draft 7 and 2020-12 share).
class SchemaChecker {
 public:
  SchemaChecker() : json_(ConfigSchema()) {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(json_);
    parser.populateSchema(adapter, schema_);  // throws on a schema it cannot read
  }

  /// Empty when `doc` is valid, else valijson's errors, one per line.
  std::string Errors(const Json& doc) {
    valijson::Validator validator;
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter target(doc);
    if (validator.validate(schema_, target, &results)) return "";
    std::string out;
    valijson::ValidationResults::Error e;
    while (results.popError(e)) {
      std::string where;
      for (const std::string& c : e.context) where += c;
      out += where + ": " + e.description + "\n";
    }
    return out.empty() ? "invalid (no detail)" : out;
  }

 private:
  Json json_;
  valijson::Schema schema_;
};

SchemaChecker& Checker() {
  static SchemaChecker checker;
  return checker;
}

/// A config text as the schema sees it: parsed like the loader parses it.
Json AsJson(std::string_view text, std::string_view path) {
  auto doc = ParseConfigDocument(text, path);
  if (!doc) FAIL(doc.error().message);
  return ConfigDocumentToJson(doc.value());
}

EnvLookup AnyVariableSet() {
  return [](const std::string& name) -> std::optional<std::string> { return "test-" + name; };
}

TEST_CASE("The config schema declares draft 2020-12 and valijson reads it", "[unit][config][schema]") {
  const Json schema = ConfigSchema();
  CHECK(schema["$schema"] == "https://json-schema.org/draft/2020-12/schema");
  CHECK(schema["type"] == "object");
  REQUIRE_NOTHROW(Checker());
  // Keywords draft 7 would not read are kept out, so a draft-7 validator sees it whole.
  const std::string text = schema.dump();
  for (const char* keyword : {"\"prefixItems\"", "\"dependentRequired\"", "\"dependentSchemas\"",
                              "\"unevaluatedProperties\"", "\"unevaluatedItems\"", "\"$dynamicRef\""}) {
    CHECK(text.find(keyword) == std::string::npos);
  }
}

TEST_CASE("Every file in examples validates against the config schema", "[unit][config][schema]") {
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(KPM_SOURCE_DIR) / "examples")) {
    const std::string ext = entry.path().extension().string();
    if (ext != ".json" && ext != ".yaml" && ext != ".yml") continue;
    INFO(entry.path().string());
    const std::string text = ReadFile(entry.path());
    // The schema may only pass what the loader loads: both agree on every example.
    REQUIRE(ParseConfigText(text, entry.path().string(), AnyVariableSet()).has_value());
    CHECK(Checker().Errors(AsJson(text, entry.path().string())) == "");
    ++checked;
  }
  CHECK(checked >= 7);
}

TEST_CASE("The config schema accepts the less common forms the loader accepts", "[unit][config][schema]") {
  const char* valid[] = {
      "providers: {openai: {apiKey: $K}}\n",
      "$schema: ./config.schema.json\nproviders: {openai: {apiKey: $K}}\n",
      "{\"$schema\": \"https://example.com/s.json\", \"mcp\": {\"openai\": {\"apiKey\": \"${K}\"}}}\n",
      "mcp: {a: {type: openai, apiKey: sk-literal-key-1}, b: {type: gemini}}\nfallback: b\n",
      "providers:\n  local: {type: openai-compatible, baseUrl: 'http://127.0.0.1:8080/v1/'}\n",
      "providers:\n  o:\n    type: openai\n    apiKey:\n"
      "      - {keyCommand: [echo, 7], name: 12345, account: 678, baseUrl: 'https://x.example/v1',"
      " limits: {rpm: 1}}\n",
      "providers: {o: {type: openai, headers: {X-Num: 5, X-Flag: true, X-T: v}, model: 4}}\n",
      "providers: {o: {type: anthropic, fallback: [], failover: {maxInFlight: 3, errorCooldownMs: 0}}}\n",
      "providers: {o: {type: openai}}\nstate: {type: redis, url: 'redis://127.0.0.1:6379/0', prefix: kp}\n",
      "providers: {o: {type: openai}}\nstate: {type: sqlite, path: ~/s.db}\nlogLevel: off\n",
      "providers: {o: {type: openai, strategy: sticky}}\nstate: sqlite\nmaxConcurrentCalls: 65536\n",
      "providers: {o: {type: openai}}\nstate: {type: redis, url: 'redis://h:6379', prefix: 42}\n",
      "providers: {openai-compatible: {type: openai}, openai: {type: openai-compatible, baseUrl: 'http://h/v1'}}\n",
  };
  for (const char* text : valid) {
    INFO(text);
    auto loaded = ParseConfigText(text, "c.yaml", AnyVariableSet());
    if (!loaded) FAIL(loaded.error().message);
    CHECK(Checker().Errors(AsJson(text, "c.yaml")) == "");
  }
  // keyFile is read at load, so this one is checked by the schema alone.
  CHECK(Checker().Errors(AsJson("providers: {o: {type: openai, apiKey: {keyFile: ~/k, name: a}}}\n", "c.yaml")) == "");
}

TEST_CASE("Configs the loader rejects are rejected by the config schema too", "[unit][config][schema]") {
  const char* invalid[] = {
      "providers: {}\n",                                                      // no provider
      "mcp: {openai: {}}\nproviders: {openai: {}}\n",                         // both maps
      "logLevel: info\n",                                                     // no providers at all
      "providers: {openai: {timeout: 5}}\n",                                  // unknown field
      "providers: {openai: {}}\nbackoffMs: 5\n",                              // misplaced field
      "providers: {x: {apiKey: $K}}\n",                                       // no type, name not a type
      "providers: {x: {type: openai-compatibel}}\n",                          // unknown type
      "providers: {x: {type: openai-compatible}}\n",                          // baseUrl required
      "providers: {openai-compatible: {}}\n",                                 // ... also when inferred
      "providers: {o: {type: openai, baseUrl: 'ftp://h/v1'}}\n",              // scheme
      "providers: {o: {type: openai, baseUrl: 'https://u:p@h/v1'}}\n",        // credentials
      "providers: {o: {type: openai, baseUrl: 'https://h/v1?x=1'}}\n",        // query
      "providers: {o: {type: openai, baseUrl: 'https://h/v1#f'}}\n",          // fragment
      "providers: {o: {type: openai, baseUrl: 'https:///v1'}}\n",             // no host
      "providers: {o: {type: openai, baseUrl: 'https://h/a b'}}\n",           // a space
      "providers: {o: {type: openai, apiKey: []}}\n",                         // empty key list
      "providers: {o: {type: openai, apiKey: ''}}\n",                         // empty key
      "providers: {o: {type: openai, apiKey: '$A-B'}}\n",                     // bad reference
      "providers: {o: {type: openai, apiKey: 'sk with space'}}\n",            // not header-safe
      "providers: {o: {type: openai, apiKey: 5}}\n",                          // a number
      "providers: {o: {type: openai, apiKey: [{name: a}]}}\n",                // no key source
      "providers: {o: {type: openai, apiKey: [{key: $A, keyFile: /k}]}}\n",   // two sources
      "providers: {o: {type: openai, apiKey: [{key: $A, label: a}]}}\n",      // unknown key field
      "providers: {o: {type: openai, apiKey: [{keyCommand: []}]}}\n",         // empty command
      "providers: {o: {type: openai, stream: yes}}\n",                        // not a boolean
      "providers: {o: {type: openai, maxTokens: '100'}}\n",                   // quoted number
      "providers: {o: {type: openai, maxTokens: 0}}\n",                       // below 1
      "providers: {o: {type: openai, timeoutMs: 31536000001}}\n",             // past a year
      "providers: {o: {type: openai, strategy: random}}\n",                   // unknown strategy
      "providers: {o: {type: openai, headers: {'a b': x}}}\n",                // header name
      "providers: {o: {type: openai, headers: {X: [1]}}}\n",                  // header value
      "providers: {o: {type: openai, failover: {maxInFlight: 0}}}\n",         // cap of 0
      "providers: {o: {type: openai, failover: {serverErrorRetries: 101}}}\n",
      "providers: {o: {type: openai, failover: {timeoutMs: 5}}}\n",           // provider field in failover
      "providers: {o: {type: openai, limits: {rpm: 0}}}\n",
      "providers: {o: {type: openai, limits: {rps: 1}}}\n",
      "providers: {o: {type: openai, fallback: [p, p]}}\n",                   // listed twice
      "providers: {'a b': {type: openai}}\n",                                 // provider name
      "providers: {o: {type: openai}}\nlogLevel: verbose\n",
      "providers: {o: {type: openai}}\nmaxConcurrentCalls: 0\n",
      "providers: {o: {type: openai}}\nstate: redis\n",                       // redis needs a url
      "providers: {o: {type: openai}}\nstate: {type: redis}\n",
      "providers: {o: {type: openai}}\nstate: {type: none, path: /x}\n",     // path only for sqlite
      "providers: {o: {type: openai}}\nstate: {type: sqlite, url: 'redis://h'}\n",
      "providers: {o: {type: openai}}\nstate: {type: sqlite, path: rel/x.db}\n",
      "providers: {o: {type: openai}}\nstate: {path: /x}\n",                  // no type
      "providers: {o: {type: openai}}\ndefault: 5\n",
      "providers: {o: {type: openai}}\n$schema: 5\n",                         // $schema is a string
      "providers: {o: {type: openai, apiKey: [{key: $A, name: \"a\\nb\"}]}}\n",  // line break in a label
  };
  for (const char* text : invalid) {
    INFO(text);
    auto loaded = ParseConfigText(text, "c.yaml", AnyVariableSet());
    CHECK_FALSE(loaded.has_value());
    CHECK(Checker().Errors(AsJson(text, "c.yaml")) != "");
  }
}

/// The property names of the object schema at `pointer`.
std::set<std::string> PropertiesAt(const Json& schema, const std::string& pointer) {
  std::set<std::string> out;
  const Json& node = schema.at(Json::json_pointer(pointer));
  for (const auto& [name, value] : node.items()) out.insert(name);
  return out;
}

std::set<std::string> AsSet(const std::vector<std::string_view>& names) {
  return std::set<std::string>(names.begin(), names.end());
}

TEST_CASE("The config schema names exactly the fields the loader knows at every level", "[unit][config][schema]") {
  const Json schema = ConfigSchema();
  const ConfigFieldNames loader = LoaderFieldNames();
  CHECK(PropertiesAt(schema, "/properties") == AsSet(loader.top));
  CHECK(PropertiesAt(schema, "/$defs/provider/properties") == AsSet(loader.provider));
  CHECK(PropertiesAt(schema, "/$defs/failover/properties") == AsSet(loader.failover));
  CHECK(PropertiesAt(schema, "/$defs/keyObject/properties") == AsSet(loader.key));
  CHECK(PropertiesAt(schema, "/$defs/limits/properties") == AsSet(loader.limits));
  CHECK(PropertiesAt(schema, "/$defs/state/anyOf/1/properties") == AsSet(loader.state));
}

TEST_CASE("Every provider and failover field of the config schema has a description", "[unit][config][schema]") {
  const Json schema = ConfigSchema();
  auto described = [&](const Json& field) {
    if (field.contains("description")) return true;
    if (!field.contains("$ref")) return false;  // a reference: the definition describes it
    return schema.at(Json::json_pointer(field["$ref"].get<std::string>().substr(1))).contains("description");
  };
  for (const char* pointer : {"/properties", "/$defs/provider/properties", "/$defs/failover/properties",
                              "/$defs/keyObject/properties", "/$defs/limits/properties"}) {
    for (const auto& [name, field] : schema.at(Json::json_pointer(pointer)).items()) {
      INFO(pointer << "/" << name);
      CHECK(described(field));
    }
  }
  // Defaults the docs give, taken from the code the loader starts from.
  CHECK(schema["/$defs/provider/properties/timeoutMs/default"_json_pointer] == 60000);
  CHECK(schema["/$defs/provider/properties/deadlineMs/default"_json_pointer] == 120000);
  CHECK(schema["/$defs/provider/properties/strategy/default"_json_pointer] == "sequential");
  CHECK(schema["/$defs/failover/properties/quotaCooldownMs/default"_json_pointer] == 3600000);
  CHECK(schema["/properties/maxConcurrentCalls/default"_json_pointer] == 256);
}

}  // namespace
}  // namespace kpm::server

namespace kpm::server {
namespace {

TEST_CASE("Every YAML example names the schema on its first line", "[unit][config][schema]") {
  for (const auto& entry : fs::directory_iterator(fs::path(KPM_SOURCE_DIR) / "examples")) {
    if (entry.path().extension() != ".yaml") continue;
    INFO(entry.path().string());
    CHECK(ReadFile(entry.path()).rfind("# yaml-language-server: $schema=../docs/config.schema.json\n", 0) == 0);
  }
  // The file they name is --print-config-schema's output, checked in (when it is).
  const fs::path copy = fs::path(KPM_SOURCE_DIR) / "docs" / "config.schema.json";
  if (fs::exists(copy)) {
    CHECK(Json::parse(ReadFile(copy)) == ConfigSchema());
  } else {
    WARN(copy.string() << " is missing: keypool-mcp --print-config-schema > docs/config.schema.json");
  }
}

}  // namespace
}  // namespace kpm::server
