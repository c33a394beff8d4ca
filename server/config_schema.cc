#include "server/config_schema.h"

#include <climits>

#include "keypool/policy.h"
#include "providers/provider_config.h"
#include "server/logging.h"
#include "state/store_spec.h"

namespace kpm::server {
namespace {

using Json = nlohmann::json;

constexpr int64_t kMaxMs = 365LL * 24 * 3600 * 1000;  // config.cc's bound on durations

template <size_t N>
Json Enum(const std::string_view (&names)[N]) {
  Json out = Json::array();
  for (std::string_view n : names) out.push_back(std::string(n));
  return out;
}

Json Ref(std::string_view def) { return {{"$ref", std::string("#/$defs/").append(def)}}; }

Json Integer(int64_t min, int64_t max, std::string_view description) {
  return {{"type", "integer"}, {"minimum", min}, {"maximum", max}, {"description", description}};
}

Json WithDefault(Json schema, Json value) {
  schema["default"] = std::move(value);
  return schema;
}

/// A duration field of a provider: whole milliseconds, 1 ms to one year.
Json Duration(int64_t default_ms, std::string_view description) {
  return WithDefault(Integer(1, kMaxMs, description), default_ms);
}

/// The loader's GetString: a string, or a number taken as written (`account: 12345`).
Json Name(std::string_view description) {
  return {{"type", Json::array({"string", "number"})}, {"minLength", 1}, {"description", description}};
}

Json Definitions() {
  const keypool::FailoverPolicy policy;  // the defaults the loader starts from
  Json defs;

  defs["baseUrl"] = {
      {"type", "string"},
      // What BaseUrlError (providers/base_url.cc) refuses, as far as a pattern can say it:
      // http(s) only, a host, no user:password@, no ?query, no #fragment, no spaces.
      {"pattern", R"(^https?://[^/?#@\s]+(/[^?#\s]*)?$)"},
      {"description",
       "An http:// or https:// URL with a host; no spaces, ?query, #fragment or user:password@ "
       "(checked with libcurl's URL parser). A trailing / is removed."},
      {"examples", Json::array({"https://api.openai.com/v1", "http://localhost:11434/v1"})}};

  defs["providerNames"] = {
      {"description", "Provider names, in the order tried; one name counts as a list of one. Each must be a "
                      "provider of this file, listed once."},
      {"anyOf", Json::array({{{"type", "string"}},
                             {{"type", "array"}, {"items", {{"type", "string"}}}, {"uniqueItems", true}}})}};

  Json limits_props;
  for (auto [field, what] : {std::pair{"rpm", "requests per minute"}, std::pair{"rpd", "requests per day"},
                             std::pair{"tpm", "tokens (input + output) per minute"}}) {
    limits_props[field] = Integer(1, 1000000000000LL, std::string("At most this many ") + what +
                                                          " per key, counted across every process.");
  }
  defs["limits"] = {{"type", "object"},
                    {"description", "Per-key usage limits; a key at a limit is skipped like a cooling key."},
                    {"properties", limits_props},
                    {"additionalProperties", false}};

  Json failover;
  auto fo = [&](const char* name, int64_t min, int64_t max, Json def, const char* description) {
    Json f = Integer(min, max, description);
    if (!def.is_null()) f["default"] = std::move(def);
    failover[name] = std::move(f);
  };
  fo("rateLimitCooldownMs", 1, kMaxMs, policy.rate_limit_cooldown_ms,
     "First cooldown after a 429 without a hint; doubles on each consecutive one.");
  fo("rateLimitCooldownMaxMs", 1, kMaxMs, policy.rate_limit_cooldown_max_ms,
     "Cap on that doubling; must be at least rateLimitCooldownMs.");
  fo("quotaCooldownMs", 0, kMaxMs, policy.quota_cooldown_ms, "Cooldown after out of credit or a spend limit.");
  fo("errorCooldownMs", 0, kMaxMs, policy.error_cooldown_ms,
     "Cooldown after a network error, timeout or repeated 5xx; 0: none.");
  fo("serverErrorRetries", 0, 100, policy.server_error_retries,
     "Further server_error attempts per provider per call.");
  fo("backoffMs", 0, kMaxMs, policy.backoff_ms,
     "Wait before retrying after a 5xx; the actual wait is uniform in [0.5, 1.5] x this.");
  fo("maxWaitMs", 0, kMaxMs, policy.max_wait_ms,
     "If the earliest cooling key is back within this, wait for it instead of failing.");
  fo("maxInFlight", 1, 100000, nullptr, "Per-key concurrent calls; omit for no cap.");
  defs["failover"] = {{"type", "object"},
                      {"description", "Failover policy knobs (SPEC section 3)."},
                      {"properties", failover},
                      {"additionalProperties", false}};

  // A key as written: a literal (visible ASCII, not starting with $) or $NAME / ${NAME}.
  defs["keyString"] = {
      {"type", "string"},
      {"pattern", R"(^(\$[A-Za-z_][A-Za-z0-9_]*|\$\{[A-Za-z_][A-Za-z0-9_]*\}|[!-#%-~][!-~]*)$)"},
      {"description",
       "The key, or $NAME / ${NAME} (the whole value) to read it from the environment variable NAME at "
       "start-up. Prefer a variable: keys written out make the file a secret."},
      {"examples", Json::array({"$OPENAI_API_KEY", "${OPENAI_API_KEY_2}"})}};
  Json label = Name("At most 64 characters, no line breaks or control characters.");
  label["maxLength"] = 64;
  label["pattern"] = R"(^[^\x00-\x1f\x7f]*$)";
  Json key_label = label;
  key_label["description"] = "The key's label in logs and tool results (default: <provider>#<n>). " +
                             label["description"].get<std::string>();
  Json account = label;
  account["description"] = "Keys with the same account share its limits: a rate limit or quota on one cools all "
                           "of them (default: each key is its own account). " +
                           label["description"].get<std::string>();
  Json key_url = Ref("baseUrl");
  defs["keyObject"] = {
      {"type", "object"},
      {"description", "A key with a label, account, endpoint or limits. Exactly one of key, keyFile, keyCommand."},
      {"properties",
       {{"key", Ref("keyString")},
        {"keyFile",
         {{"type", "string"},
          {"minLength", 1},
          {"description", "A file whose first line is the key; ~/ is $HOME, a relative path is relative to the "
                          "config file. Must be readable by its owner only (chmod 600)."}}},
        {"keyCommand",
         {{"type", "array"},
          {"minItems", 1},
          {"items", {{"type", Json::array({"string", "number"})}}},
          {"description", "A program and its arguments, run without a shell once at start-up; the key is the "
                          "first line it prints. E.g. [pass, show, openai/key-1]."}}},
        {"name", key_label},
        {"account", account},
        {"baseUrl", key_url},
        {"limits", Ref("limits")}}},
      {"additionalProperties", false},
      {"oneOf", Json::array({{{"required", {"key"}}}, {{"required", {"keyFile"}}}, {{"required", {"keyCommand"}}}})}};
  defs["key"] = {{"anyOf", Json::array({Ref("keyString"), Ref("keyObject")})}};

  Json headers = {
      {"type", "object"},
      {"description", "Extra HTTP headers on every request, sent as written (no $VAR expansion)."},
      {"default", Json::object()},
      // patternProperties, not propertyNames: valijson 1.0 applies a propertyNames inside a
      // $ref'd definition's parent constraints to each name, so no definition here uses it.
      {"patternProperties",
       {{R"(^[!#$%&'*+.^_`|~0-9A-Za-z-]+$)",
         {{"type", Json::array({"string", "number", "boolean"})}, {"pattern", R"(^[^\r\n]*$)"}}}}},
      {"additionalProperties", false}};

  Json provider_props = {
      {"type",
       {{"enum", Enum(providers::kProviderTypeNames)},
        {"description", "Which API the server speaks. May be omitted when the provider's name is a type."}}},
      {"baseUrl", {{"$ref", "#/$defs/baseUrl"}}},
      {"apiKey",
       {{"description", "One key or a list of keys. Omit it for a server without authentication."},
        {"anyOf", Json::array({Ref("key"), {{"type", "array"}, {"minItems", 1}, {"items", Ref("key")}}})}}},
      {"model", Name("Model used when a call names none (default: the type's; openai-compatible asks the server).")},
      {"maxTokens", Integer(1, INT_MAX, "max_tokens sent when a call gives none (default: 4096 for anthropic, "
                                        "else unset).")},
      {"headers", headers},
      {"strategy", {{"enum", Enum(keypool::kStrategyNames)},
                    {"default", std::string(keypool::StrategyName(policy.strategy))},
                    {"description", "sequential: the first usable key in order; round-robin: rotate the starting "
                                    "key on every call; sticky: each process keeps one key until it fails (needs "
                                    "shared state)."}}},
      {"stream", {{"type", "boolean"}, {"default", true}, {"description", "Stream from upstream; false for servers "
                                                                         "without SSE."}}},
      {"timeoutMs", Duration(providers::kDefaultTimeoutMs, "One attempt, start to last byte.")},
      {"firstByteTimeoutMs", Duration(providers::kDefaultFirstByteTimeoutMs, "Request sent to response headers.")},
      {"idleTimeoutMs", Duration(providers::kDefaultIdleTimeoutMs, "Longest silence between stream chunks.")},
      {"deadlineMs", Duration(policy.deadline_ms, "The whole call: every attempt, backoff and wait.")},
      {"healthCheck", {{"type", "boolean"}, {"default", false},
                       {"description", "Check every key at start-up, in the background."}}},
      {"fallback", {{"$ref", "#/$defs/providerNames"}}},
      {"failover", Ref("failover")},
      {"limits", Ref("limits")},
  };
  defs["provider"] = {
      {"type", "object"},
      {"description", "One provider: its API type, endpoint, keys and policy."},
      {"properties", provider_props},
      {"additionalProperties", false},
      {"if", {{"properties", {{"type", {{"const", "openai-compatible"}}}}}, {"required", {"type"}}}},
      {"then", {{"required", {"baseUrl"}}}}};

  // Names that are a type may leave `type` out; openai-compatible still needs a baseUrl.
  Json named;
  std::string type_names;
  for (std::string_view t : providers::kProviderTypeNames) {
    named[std::string(t)] = Ref("provider");
    if (!type_names.empty()) type_names.push_back('|');
    type_names.append(t);
  }
  named["openai-compatible"] = {
      {"allOf", Json::array({Ref("provider"),
                             {{"if", {{"not", {{"required", {"type"}}}}}}, {"then", {{"required", {"baseUrl"}}}}}})}};
  defs["providers"] = {
      {"type", "object"},
      {"description", "Provider name -> settings, in order (the first is the default). A name is 1 to 64 visible "
                      "characters; it may stand for its type (openai, openrouter, anthropic, gemini)."},
      {"minProperties", 1},
      {"properties", named},
      // Any other name of 1 to 64 visible characters, with its type given.
      {"patternProperties",
       {{std::string("^(?!(").append(type_names).append(")$)[!-~]{1,64}$"),
         {{"allOf", Json::array({Ref("provider"), {{"required", {"type"}}}})}}}}},
      {"additionalProperties", false}};

  defs["state"] = {
      {"description", "Where key state is shared by every process (docs/state.md): sqlite (one 0600 file under "
                      "$XDG_STATE_HOME), none (this process only), or a map."},
      {"default", "sqlite"},
      {"anyOf",
       Json::array(
           {{{"enum", Json::array({"none", "sqlite"})}},
            {{"type", "object"},
             {"required", {"type"}},
             {"additionalProperties", false},
             {"properties",
              {{"type", {{"enum", Enum(state::kStoreTypeNames)}}},
               {"path", {{"type", "string"}, {"pattern", "^(/|~/)"},
                         {"description", "sqlite only: the database file, an absolute path or ~/..."}}},
               {"url", {{"type", "string"}, {"pattern", "^redis://"},
                        {"description", "redis only, required: redis://[:password@]host[:port][/db]"}}},
               {"prefix", {{"type", Json::array({"string", "number"})}, {"pattern", "^[!-~]+$"},
                           {"description", "redis only: the key prefix (default keypool)."}}}}},
             {"allOf",
              Json::array(
                  {{{"if", {{"properties", {{"type", {{"const", "redis"}}}}}}}, {"then", {{"required", {"url"}}}}},
                   {{"if", {{"required", {"path"}}}}, {"then", {{"properties", {{"type", {{"const", "sqlite"}}}}}}}},
                   {{"if", {{"anyOf", Json::array({{{"required", {"url"}}}, {{"required", {"prefix"}}}})}}},
                    {"then", {{"properties", {{"type", {{"const", "redis"}}}}}}}}})}}})}};
  return defs;
}

}  // namespace

Json ConfigSchema() {
  Json top_props = {
      {"$schema", {{"type", "string"}, {"description", "This schema's location, for editors; ignored."}}},
      {"mcp", Ref("providers")},
      {"providers", Ref("providers")},
      {"default", {{"type", "string"}, {"description", "Provider used when a call names none (default: the first "
                                                       "listed)."}}},
      {"fallback", {{"$ref", "#/$defs/providerNames"}}},
      {"logLevel", {{"enum", Enum(kLogLevelNames)}, {"default", "info"},
                    {"description", "Below --log-level and KEYPOOL_LOG_LEVEL."}}},
      {"maxConcurrentCalls", WithDefault(Integer(1, 65536, "Tool calls reaching an upstream at once; more wait in "
                                                           "a queue."),
                                         256)},
      {"state", Ref("state")},
  };
  return {{"$schema", "https://json-schema.org/draft/2020-12/schema"},
          {"$id", "https://keypool-mcp.invalid/config.schema.json"},
          {"title", "keypool-mcp configuration"},
          {"description", "The config file of keypool-mcp (docs/configuration.md). Providers go under \"providers\" "
                          "or \"mcp\", not both."},
          {"type", "object"},
          {"properties", top_props},
          {"additionalProperties", false},
          {"oneOf", Json::array({{{"required", {"mcp"}}}, {{"required", {"providers"}}}})},
          {"$defs", Definitions()}};
}

}  // namespace kpm::server
