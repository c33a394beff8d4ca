#include "server/config.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <sstream>
#include <unordered_map>

#include "providers/base_url.h"
#include "server/config_document.h"
#include "server/config_hints.h"
#include "server/config_schema.h"
#include "server/key_sources.h"
#include "server/logging.h"
#include "state/store_spec.h"

namespace kpm::server {
namespace {

using providers::ProviderConfig;
using providers::ProviderType;
using Kind = ConfigDocument::Kind;

// Validation and mapping of the parsed document (config_document.h) to Config: the file
// format is one tree with positions, so every check here is written once for JSON and YAML.

std::string Describe(const ConfigDocument& v) {
  switch (v.kind) {
    case Kind::kNull: return "null";
    case Kind::kBool: return "true/false";
    case Kind::kInt:
    case Kind::kFloat: return "a number";
    case Kind::kString: return "a string";
    case Kind::kList: return "a list";
    case Kind::kMap: return "a map";
  }
  return "something else";
}

// ---- Field names, hints ----------------------------------------------------------------

constexpr std::string_view kTopFields[] = {"mcp",      "providers",          "default", "fallback",
                                           "logLevel", "maxConcurrentCalls", "state",   "$schema"};
constexpr std::string_view kProviderFields[] = {
    "type",        "apiKey",    "baseUrl",       "model",  "maxTokens",          "headers",
    "strategy",    "stream",    "timeoutMs",     "firstByteTimeoutMs", "idleTimeoutMs",
    "deadlineMs",  "healthCheck", "fallback",    "failover", "limits"};
constexpr std::string_view kLimitFields[] = {"rpm", "rpd", "tpm"};
constexpr std::string_view kStateFields[] = {"type", "path", "url", "prefix"};

constexpr int64_t kMaxMs = 365LL * 24 * 3600 * 1000;  // one year: beyond it is a typo

/// One field of the `failover` block: its name, its bounds and the FailoverPolicy
/// member it sets (a millisecond or a count member: exactly one is set).
struct FailoverField {
  std::string_view name;
  int64_t min;
  int64_t max;
  int64_t keypool::FailoverPolicy::*ms;
  int keypool::FailoverPolicy::*count;
};
constexpr FailoverField kFailoverTable[] = {
    {"rateLimitCooldownMs", 1, kMaxMs, &keypool::FailoverPolicy::rate_limit_cooldown_ms, nullptr},
    {"rateLimitCooldownMaxMs", 1, kMaxMs, &keypool::FailoverPolicy::rate_limit_cooldown_max_ms, nullptr},
    {"quotaCooldownMs", 0, kMaxMs, &keypool::FailoverPolicy::quota_cooldown_ms, nullptr},
    {"errorCooldownMs", 0, kMaxMs, &keypool::FailoverPolicy::error_cooldown_ms, nullptr},
    {"serverErrorRetries", 0, 100, nullptr, &keypool::FailoverPolicy::server_error_retries},
    {"backoffMs", 0, kMaxMs, &keypool::FailoverPolicy::backoff_ms, nullptr},
    {"maxWaitMs", 0, kMaxMs, &keypool::FailoverPolicy::max_wait_ms, nullptr},
    {"maxInFlight", 1, 100000, nullptr, &keypool::FailoverPolicy::max_in_flight},
};
/// The names of kFailoverTable, for the unknown-field checks and hints.
constexpr auto kFailoverFields = [] {
  std::array<std::string_view, std::size(kFailoverTable)> names{};
  for (size_t i = 0; i < names.size(); ++i) names[i] = kFailoverTable[i].name;
  return names;
}();
constexpr std::string_view kKeyFields[] = {"key", "keyFile", "keyCommand", "name", "account", "baseUrl", "limits"};
/// The fields that give the key itself: a key object has exactly one of them.
constexpr std::string_view kKeySources[] = {"key", "keyFile", "keyCommand"};
constexpr Names kTypes = providers::kProviderTypeNames;

/// `unknown` quoted for a message: as written when it is a typo of a known name (within
/// two edits: no key is that close to a field name or type word), else through
/// QuoteForMessage, which hides anything that could be a pasted key.
std::string QuoteUnknown(std::string_view unknown, Names known) {
  // Field names of any level count: "rateLimitCooldownMaxMs" at the top is misplaced, not a key.
  for (Names names : {known, Names(kTopFields), Names(kProviderFields), Names(kFailoverFields), Names(kKeyFields)}) {
    if (IsTypoOf(unknown, names)) return QuoteVerbatim(unknown);
  }
  return QuoteForMessage(unknown);
}

// ---- The loader ------------------------------------------------------------------------

/// A provider name in a `default` / `fallback`, checked once every provider is known.
struct ProviderRef {
  std::string name;
  ConfigMark mark;
  std::string path;
};

class Loader {
 public:
  Loader(std::string_view file, const EnvLookup& env) : file_(file), env_(env) {}

  Result<Config> Load(const ConfigDocument& root);

 private:
  Error Fail(const ConfigDocument& v, std::string_view path, std::string_view message) const {
    return ConfigError(file_, v.mark, path, message);
  }
  Error Fail(ConfigMark m, std::string_view path, std::string_view message) const {
    return ConfigError(file_, m, path, message);
  }
  Error WrongType(const ConfigDocument& v, std::string_view path, std::string_view expected) const {
    return Fail(v, path, "expected " + std::string(expected) + ", got " + Describe(v));
  }

  Status CheckFields(const ConfigDocument& map, const std::string& path, Names known,
                     const std::function<std::string(const std::string&)>& extra_hint) const;
  Result<std::string> GetString(const ConfigDocument& v, const std::string& path) const;
  Result<std::string> GetEnum(const ConfigDocument& v, const std::string& path, std::string_view what,
                              Names valid) const;
  Result<bool> GetBool(const ConfigDocument& v, const std::string& path) const;
  Result<int64_t> GetInt(const ConfigDocument& v, const std::string& path, int64_t min, int64_t max) const;
  Result<std::vector<ProviderRef>> GetNames(const ConfigDocument& v, const std::string& path) const;
  Result<std::string> GetBaseUrl(const ConfigDocument& v, const std::string& path) const;
  Result<std::string> GetLabel(const ConfigDocument& v, const std::string& path) const;
  void WarnPlainHttp(const ProviderConfig& pc, const ConfigDocument& map, ConfigMark name_mark,
                     const std::string& path, const std::vector<const ConfigDocument*>& key_url_nodes);

  Result<ProviderConfig> LoadProvider(const std::string& name, ConfigMark name_mark, const ConfigDocument& body,
                                      const std::string& path);
  /// `key_url_nodes` gets, per key, its own baseUrl node (nullptr when it has none).
  Status LoadKeys(ProviderConfig& pc, const ConfigDocument& v, const std::string& path,
                  std::vector<const ConfigDocument*>& key_url_nodes);
  Result<keypool::KeySpec> LoadKey(const ProviderConfig& pc, size_t n, const ConfigDocument& v,
                                   const std::string& path, const ConfigDocument*& url_node);
  Status ResolveSecret(const ConfigDocument& v, const std::string& path, keypool::KeySpec& key);
  /// `keyFile` (key_sources.h): a file that cannot give a key is a config error.
  Status ResolveKeyFile(const ConfigDocument& v, const std::string& path, keypool::KeySpec& key) const;
  /// `keyCommand` (key_sources.h): a malformed value is a config error; a command that
  /// fails disables the key with the reason and a warning, as an unset $VAR does.
  Status ResolveKeyCommand(const ConfigDocument& v, const std::string& path, keypool::KeySpec& key);
  Status LoadHeaders(ProviderConfig& pc, const ConfigDocument& v, const std::string& path) const;
  Status LoadFailover(keypool::FailoverPolicy& policy, const ConfigDocument& v, const std::string& path) const;
  Result<keypool::KeyLimits> LoadLimits(const ConfigDocument& v, const std::string& path) const;
  Result<state::StoreSpec> LoadState(const ConfigDocument& v) const;
  Status CheckRefs(const std::vector<ProviderRef>& refs, const Config& config, const std::string& self) const;

  std::string file_;
  const EnvLookup& env_;
  std::vector<std::string> warnings_;
  std::vector<std::string> env_refs_;
  size_t literal_keys_ = 0;
  std::map<std::string, std::vector<ProviderRef>> provider_fallbacks_;
};

/// The entry named `key`, or nullptr when it is absent or null (null counts as omitted).
const ConfigDocument* Find(const ConfigDocument& map, std::string_view key) {
  for (const auto& [k, v] : map.entries) {
    if (k == key) return v.kind == Kind::kNull ? nullptr : &v;
  }
  return nullptr;
}

std::string Child(const std::string& path, std::string_view field) {
  return path.empty() ? std::string(field) : path + "." + std::string(field);
}

Status Loader::CheckFields(const ConfigDocument& map, const std::string& path, Names known,
                           const std::function<std::string(const std::string&)>& extra_hint) const {
  for (size_t i = 0; i < map.entries.size(); ++i) {
    const std::string& name = map.entries[i].key;
    if (HasName(known, name)) continue;
    std::string hint = extra_hint ? extra_hint(name) : "";
    if (hint.empty()) hint = DidYouMean(name, known);
    if (hint.empty()) hint = " (known fields: " + JoinNames(known) + ")";
    return Fail(map.key_marks[i], path, "unknown field " + QuoteUnknown(name, known) + hint);
  }
  return Ok{};
}

Result<std::string> Loader::GetString(const ConfigDocument& v, const std::string& path) const {
  // Numbers are accepted as written: `account: 12345` is a name in YAML, not arithmetic.
  if (v.kind != Kind::kString && v.kind != Kind::kInt && v.kind != Kind::kFloat) {
    return WrongType(v, path, "a string");
  }
  if (v.text.empty()) return Fail(v, path, "must not be empty");
  return v.text;
}

Result<std::string> Loader::GetEnum(const ConfigDocument& v, const std::string& path, std::string_view what,
                                    Names valid) const {
  if (v.kind != Kind::kString) {
    return WrongType(v, path, "one of " + JoinNames(valid));
  }
  if (HasName(valid, v.text)) return v.text;
  return Fail(v, path,
              "unknown " + std::string(what) + " " + QuoteUnknown(v.text, valid) + DidYouMean(v.text, valid) +
                  " (valid: " + JoinNames(valid) + ")");
}

Result<bool> Loader::GetBool(const ConfigDocument& v, const std::string& path) const {
  if (v.kind != Kind::kBool) return WrongType(v, path, "true or false");
  return v.text[0] == 't' || v.text[0] == 'T';
}

Result<int64_t> Loader::GetInt(const ConfigDocument& v, const std::string& path, int64_t min, int64_t max) const {
  if (v.kind != Kind::kInt) return WrongType(v, path, "a whole number");
  std::string_view text = v.text;
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n > max) {
    return Fail(v, path, "too large (at most " + std::to_string(max) + ")");
  }
  if (n < min) {
    return Fail(v, path, min == 0 ? std::string("must not be negative") : "must be at least " + std::to_string(min));
  }
  return n;
}

Result<std::vector<ProviderRef>> Loader::GetNames(const ConfigDocument& v, const std::string& path) const {
  std::vector<ProviderRef> refs;
  if (v.kind == Kind::kString) {  // a single name, as a one-element list
    refs.push_back({v.text, v.mark, path});
    return refs;
  }
  if (v.kind != Kind::kList) return WrongType(v, path, "a list of provider names");
  for (size_t i = 0; i < v.items.size(); ++i) {
    std::string item_path = path + "[" + std::to_string(i) + "]";
    const ConfigDocument& item = v.items[i];
    if (item.kind != Kind::kString) return WrongType(item, item_path, "a provider name");
    for (const ProviderRef& r : refs) {
      if (r.name == item.text) return Fail(item, item_path, QuoteForMessage(item.text) + " is listed twice");
    }
    refs.push_back({item.text, item.mark, item_path});
  }
  return refs;
}

Result<std::string> Loader::GetBaseUrl(const ConfigDocument& v, const std::string& path) const {
  auto url = GetString(v, path);
  if (!url) return url.error();
  std::string u = url.value();
  if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0) {
    return Fail(v, path, "must start with http:// or https://");
  }
  // libcurl's own parser decides, so what loads is what curl will send: a space, a line
  // break, a ?query, a #fragment, user:pass@ or no host would otherwise load and then
  // fail every request as a network error, cooling good keys. The value is not quoted:
  // user:pass@ is a credential.
  if (std::optional<std::string> why = providers::BaseUrlError(u)) return Fail(v, path, *why);
  while (u.size() > 1 && u.back() == '/') u.pop_back();
  return u;
}

/// Control characters, and the Unicode line breaks some log viewers honour: C1 controls
/// (U+0080..U+009F, NEL among them), U+2028 and U+2029.
bool HasControlOrLineBreak(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return true;
    const auto next = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0;
    if (c == 0xC2 && next >= 0x80 && next <= 0x9F) return true;
    if (c == 0xE2 && next == 0x80 && i + 2 < s.size() &&
        (static_cast<unsigned char>(s[i + 2]) == 0xA8 || static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
      return true;
    }
  }
  return false;
}

/// Characters, not bytes: UTF-8 continuation bytes do not count.
size_t Utf8Length(std::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

constexpr size_t kMaxLabelChars = 64;

Result<std::string> Loader::GetLabel(const ConfigDocument& v, const std::string& path) const {
  auto s = GetString(v, path);
  if (!s) return s.error();
  // Labels and accounts are written into log lines, key_status and error reports: a
  // newline in one would forge a line of its own.
  if (HasControlOrLineBreak(s.value())) return Fail(v, path, "must not contain line breaks or control characters");
  if (Utf8Length(s.value()) > kMaxLabelChars) {
    return Fail(v, path, "too long (at most " + std::to_string(kMaxLabelChars) + " characters)");
  }
  return s;
}

Result<Config> Loader::Load(const ConfigDocument& root) {
  if (root.kind == Kind::kNull) return Fail(root, "", "the file is empty");
  if (root.kind != Kind::kMap) return WrongType(root, "", "a map at the top level");
  auto top_hint = [](const std::string& name) -> std::string {
    if (HasName(kTypes, name) || name == "mcpServers") {
      return " — providers go under \"mcp\" (or \"providers\")";
    }
    if (HasName(kProviderFields, name) && name != "fallback") {
      return " — " + QuoteVerbatim(name) + " is a provider field: put it under mcp.<provider>";
    }
    return "";
  };
  if (auto s = CheckFields(root, "", kTopFields, top_hint); !s) return s.error();
  // `$schema` is for editors (config_schema.h): a string, otherwise ignored.
  if (const ConfigDocument* v = Find(root, "$schema"); v && v->kind != Kind::kString) {
    return WrongType(*v, "$schema", "a string (the URL or path of the config's JSON Schema)");
  }

  const ConfigDocument* mcp = nullptr;
  std::string root_name;
  for (std::string_view name : {"mcp", "providers"}) {
    const ConfigDocument* v = Find(root, name);
    if (!v) continue;
    if (mcp) return Fail(*v, "", "both \"mcp\" and \"providers\" are given; use one");
    mcp = v;
    root_name = name;
  }
  if (!mcp) return Fail(root, "", "no providers: add a \"mcp\" (or \"providers\") map with at least one provider");
  if (mcp->kind != Kind::kMap) return WrongType(*mcp, root_name, "a map of provider names to settings");
  if (mcp->entries.empty()) return Fail(*mcp, root_name, "no providers: name at least one");

  Config config;
  config.path = file_;
  for (size_t i = 0; i < mcp->entries.size(); ++i) {
    const auto& [name, body] = mcp->entries[i];
    auto pc = LoadProvider(name, mcp->key_marks[i], body, root_name + "." + name);
    if (!pc) return pc.error();
    config.providers.push_back(std::move(pc.value()));
  }

  if (const ConfigDocument* v = Find(root, "logLevel")) {
    auto level = GetEnum(*v, "logLevel", "log level", kLogLevelNames);
    if (!level) return level.error();
    config.log_level = level.value();
  }
  if (const ConfigDocument* v = Find(root, "maxConcurrentCalls")) {
    auto n = GetInt(*v, "maxConcurrentCalls", 1, 65536);
    if (!n) return n.error();
    config.max_concurrent_calls = static_cast<size_t>(n.value());
  }
  if (const ConfigDocument* v = Find(root, "default")) {
    if (v->kind != Kind::kString) return WrongType(*v, "default", "a provider name");
    if (auto s = CheckRefs({ProviderRef{v->text, v->mark, "default"}}, config, ""); !s) return s.error();
    config.default_provider = v->text;
  } else {
    config.default_provider = config.providers.front().name;
  }
  if (const ConfigDocument* v = Find(root, "fallback")) {
    auto refs = GetNames(*v, "fallback");
    if (!refs) return refs.error();
    if (auto s = CheckRefs(refs.value(), config, ""); !s) return s.error();
    for (const ProviderRef& r : refs.value()) config.fallback.push_back(r.name);
  }
  for (const ProviderConfig& pc : config.providers) {
    if (auto s = CheckRefs(provider_fallbacks_[pc.name], config, pc.name); !s) return s.error();
  }
  const ConfigDocument* state_node = Find(root, "state");
  if (state_node) {
    auto spec = LoadState(*state_node);
    if (!spec) return spec.error();
    config.state = spec.value();
  }
  if (config.state.type == state::StoreType::kSqlite && config.state.path.empty()) {
    config.state.path = state::DefaultSqlitePath(env_ ? env_("XDG_STATE_HOME").value_or("") : "",
                                                 env_ ? env_("HOME").value_or("") : "");
  }
  if (config.state.type == state::StoreType::kNone) {
    for (size_t i = 0; i < config.providers.size(); ++i) {
      if (config.providers[i].failover.strategy != keypool::Strategy::kSticky) continue;
      return Fail(state_node ? state_node->mark : root.mark, root_name + "." + config.providers[i].name + ".strategy",
                  "strategy sticky needs shared state (state: sqlite or redis): with state none every process "
                  "would stick to the same key");
    }
  }
  config.warnings = std::move(warnings_);
  config.env_refs = std::move(env_refs_);
  config.literal_keys = literal_keys_;
  return config;
}

Result<keypool::KeyLimits> Loader::LoadLimits(const ConfigDocument& v, const std::string& path) const {
  if (v.kind != Kind::kMap) return WrongType(v, path, "a map {rpm, rpd, tpm}");
  if (auto s = CheckFields(v, path, kLimitFields, nullptr); !s) return s.error();
  keypool::KeyLimits limits;
  for (auto [field, target] : {std::pair{"rpm", &limits.rpm}, std::pair{"rpd", &limits.rpd},
                               std::pair{"tpm", &limits.tpm}}) {
    if (const ConfigDocument* n = Find(v, field)) {
      auto value = GetInt(*n, Child(path, field), 1, 1000000000000LL);
      if (!value) return value.error();
      *target = value.value();
    }
  }
  return limits;
}

Result<state::StoreSpec> Loader::LoadState(const ConfigDocument& v) const {
  state::StoreSpec spec;
  const ConfigDocument* type = &v;
  if (v.kind == Kind::kMap) {
    if (auto s = CheckFields(v, "state", kStateFields, nullptr); !s) return s.error();
    type = Find(v, "type");
    if (!type) return Fail(v, "state", "missing \"type\" (none, sqlite or redis)");
  }
  auto name = GetEnum(*type, v.kind == Kind::kMap ? "state.type" : "state", "state store", state::kStoreTypeNames);
  if (!name) return name.error();
  spec.type = *FromName<state::StoreType>(state::kStoreTypeNames, name.value());
  if (v.kind != Kind::kMap) {
    if (spec.type == state::StoreType::kRedis) return Fail(v, "state", "redis needs a url: state: {type: redis, url: redis://127.0.0.1:6379/0}");
    return spec;
  }
  const ConfigDocument* path = Find(v, "path");
  const ConfigDocument* url = Find(v, "url");
  const ConfigDocument* prefix = Find(v, "prefix");
  if (path && spec.type != state::StoreType::kSqlite) return Fail(*path, "state.path", "only a sqlite store has a path");
  if ((url || prefix) && spec.type != state::StoreType::kRedis) {
    return Fail(url ? *url : *prefix, url ? "state.url" : "state.prefix", "only a redis store has a url and a prefix");
  }
  if (path) {
    auto p = GetString(*path, "state.path");
    if (!p) return p.error();
    if (p.value()[0] != '/' && p.value().rfind("~/", 0) != 0) return Fail(*path, "state.path", "must be an absolute path");
    spec.path = p.value();
    if (spec.path.rfind("~/", 0) == 0) {
      std::string home = env_ ? env_("HOME").value_or("") : "";
      if (home.empty()) return Fail(*path, "state.path", "starts with ~/ but HOME is not set");
      spec.path = home + spec.path.substr(1);
    }
  }
  if (spec.type == state::StoreType::kRedis) {
    if (!url) return Fail(v, "state", "redis needs a url (redis://127.0.0.1:6379/0)");
    auto u = GetString(*url, "state.url");
    if (!u) return u.error();
    if (auto parsed = state::ParseRedisUrl(u.value(), spec.prefix); !parsed) {
      return Fail(*url, "state.url", parsed.error().message);
    }
    spec.url = u.value();
  }
  if (prefix) {
    auto p = GetString(*prefix, "state.prefix");
    if (!p) return p.error();
    if (!std::all_of(p.value().begin(), p.value().end(), [](unsigned char c) { return std::isgraph(c); })) {
      return Fail(*prefix, "state.prefix", "must be visible characters without spaces");
    }
    spec.prefix = p.value();
  }
  return spec;
}

Status Loader::CheckRefs(const std::vector<ProviderRef>& refs, const Config& config, const std::string& self) const {
  for (const ProviderRef& r : refs) {
    if (!self.empty() && r.name == self) return Fail(r.mark, r.path, "a provider cannot fall back to itself");
    bool known = std::any_of(config.providers.begin(), config.providers.end(),
                             [&](const ProviderConfig& pc) { return pc.name == r.name; });
    if (known) continue;
    std::vector<std::string_view> names;
    for (const ProviderConfig& pc : config.providers) names.push_back(pc.name);
    return Fail(r.mark, r.path,
                "no provider named " + QuoteUnknown(r.name, names) + DidYouMean(r.name, names) +
                    " (providers: " + JoinNames(names) + ")");
  }
  return Ok{};
}

Result<ProviderConfig> Loader::LoadProvider(const std::string& name, ConfigMark name_mark, const ConfigDocument& body,
                                            const std::string& path) {
  if (name.empty() || name.size() > 64 ||
      !std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isgraph(c); })) {
    return Fail(name_mark, path, "a provider name must be 1 to 64 visible characters without spaces");
  }
  ConfigDocument empty;
  empty.kind = Kind::kMap;
  empty.mark = body.mark;
  const ConfigDocument& map = body.kind == Kind::kNull ? empty : body;
  if (map.kind != Kind::kMap) return WrongType(map, path, "a map of provider settings");
  auto provider_hint = [](const std::string& field) -> std::string {
    if (HasName(kFailoverFields, field)) {
      return " — " + QuoteVerbatim(field) + " belongs in the \"failover\" block";
    }
    return "";
  };
  if (auto s = CheckFields(map, path, kProviderFields, provider_hint); !s) return s.error();

  ProviderConfig pc;
  pc.name = name;
  if (const ConfigDocument* v = Find(map, "type")) {
    auto type = GetEnum(*v, Child(path, "type"), "provider type", kTypes);
    if (!type) return type.error();
    pc.type = *providers::ParseProviderType(type.value());
  } else if (auto inferred = providers::ParseProviderType(name)) {
    pc.type = *inferred;
  } else {
    return Fail(name_mark, path, "missing \"type\" (one of " + JoinNames(kTypes) + ")");
  }

  pc.base_url = providers::DefaultBaseUrl(pc.type);
  if (const ConfigDocument* v = Find(map, "baseUrl")) {
    auto url = GetBaseUrl(*v, Child(path, "baseUrl"));
    if (!url) return url.error();
    pc.base_url = url.value();
  } else if (pc.type == ProviderType::kOpenAICompatible) {
    return Fail(name_mark, path, "\"baseUrl\" is required for type openai-compatible (e.g. http://localhost:11434/v1)");
  }

  if (const ConfigDocument* v = Find(map, "limits")) {
    auto limits = LoadLimits(*v, Child(path, "limits"));
    if (!limits) return limits.error();
    pc.limits = limits.value();
  }
  if (const ConfigDocument* v = Find(map, "apiKey")) {
    std::vector<const ConfigDocument*> key_url_nodes;
    if (auto s = LoadKeys(pc, *v, Child(path, "apiKey"), key_url_nodes); !s) return s.error();
    WarnPlainHttp(pc, map, name_mark, path, key_url_nodes);
  } else if (pc.type != ProviderType::kOpenAICompatible && pc.base_url == providers::DefaultBaseUrl(pc.type)) {
    warnings_.push_back(ConfigLocation(file_, name_mark, path) + "no apiKey: requests to " + pc.base_url +
                        " go out without authentication");
  }
  if (const ConfigDocument* v = Find(map, "model")) {
    auto model = GetString(*v, Child(path, "model"));
    if (!model) return model.error();
    pc.model = model.value();
  }
  pc.max_tokens = providers::DefaultMaxTokens(pc.type);
  if (const ConfigDocument* v = Find(map, "maxTokens")) {
    auto n = GetInt(*v, Child(path, "maxTokens"), 1, INT_MAX);
    if (!n) return n.error();
    pc.max_tokens = static_cast<int>(n.value());
  }
  if (const ConfigDocument* v = Find(map, "headers")) {
    if (auto s = LoadHeaders(pc, *v, Child(path, "headers")); !s) return s.error();
  }
  if (const ConfigDocument* v = Find(map, "strategy")) {
    auto s = GetEnum(*v, Child(path, "strategy"), "strategy", keypool::kStrategyNames);
    if (!s) return s.error();
    pc.failover.strategy = *keypool::ParseStrategy(s.value());
  }
  for (auto [field, target] : {std::pair{"stream", &pc.stream}, std::pair{"healthCheck", &pc.health_check}}) {
    if (const ConfigDocument* v = Find(map, field)) {
      auto b = GetBool(*v, Child(path, field));
      if (!b) return b.error();
      *target = b.value();
    }
  }
  for (auto [field, target] : {std::pair{"timeoutMs", &pc.timeout_ms},
                               std::pair{"firstByteTimeoutMs", &pc.first_byte_timeout_ms},
                               std::pair{"idleTimeoutMs", &pc.idle_timeout_ms},
                               std::pair{"deadlineMs", &pc.failover.deadline_ms}}) {
    if (const ConfigDocument* v = Find(map, field)) {
      auto n = GetInt(*v, Child(path, field), 1, kMaxMs);
      if (!n) return n.error();
      *target = n.value();
    }
  }
  if (const ConfigDocument* v = Find(map, "fallback")) {
    auto refs = GetNames(*v, Child(path, "fallback"));
    if (!refs) return refs.error();
    pc.fallback.emplace();
    for (const ProviderRef& r : refs.value()) pc.fallback->push_back(r.name);
    provider_fallbacks_[name] = std::move(refs.value());
  }
  if (const ConfigDocument* v = Find(map, "failover")) {
    if (auto s = LoadFailover(pc.failover, *v, Child(path, "failover")); !s) return s.error();
  }
  return pc;
}

Status Loader::LoadKeys(ProviderConfig& pc, const ConfigDocument& v, const std::string& path,
                        std::vector<const ConfigDocument*>& key_url_nodes) {
  std::vector<std::pair<const ConfigDocument*, std::string>> elements;
  if (v.kind == Kind::kList) {
    if (v.items.empty()) {
      return Fail(v, path, "an empty list: give at least one key, or omit apiKey for a server without authentication");
    }
    for (size_t i = 0; i < v.items.size(); ++i) {
      elements.emplace_back(&v.items[i], path + "[" + std::to_string(i) + "]");
    }
  } else {
    elements.emplace_back(&v, path);  // one key: a string or an object
  }
  std::unordered_map<std::string, size_t> labels, secrets;  // -> index: linear in the key count
  for (size_t i = 0; i < elements.size(); ++i) {
    const auto& [element, element_path] = elements[i];
    const ConfigDocument* url_node = nullptr;
    auto key = LoadKey(pc, i + 1, *element, element_path, url_node);
    if (!key) return key.error();
    if (auto [at, fresh] = labels.emplace(key->label, i); !fresh) {
      return Fail(*element, element_path,
                  "duplicate key name " + QuoteForMessage(key->label) + " (also " + elements[at->second].second + ")");
    }
    if (!key->secret.empty()) {
      if (auto [at, fresh] = secrets.emplace(key->secret, i); !fresh) {
        warnings_.push_back(ConfigLocation(file_, element->mark, element_path) + "the same key as " +
                            elements[at->second].second + " (" + pc.keys[at->second].label + ")");
      }
    }
    pc.keys.push_back(std::move(key.value()));
    key_url_nodes.push_back(url_node);
  }
  return Ok{};
}

Result<keypool::KeySpec> Loader::LoadKey(const ProviderConfig& pc, size_t n, const ConfigDocument& v,
                                         const std::string& path, const ConfigDocument*& url_node) {
  keypool::KeySpec key;
  key.label = pc.name + "#" + std::to_string(n);
  key.limits = pc.limits;
  const ConfigDocument* secret = &v;
  std::string secret_path = path;
  std::string_view source = "key";  // which of kKeySources gives the key
  if (v.kind == Kind::kMap) {
    // Field names of a key object are not quoted when unknown: a pasted key might be one.
    for (size_t i = 0; i < v.entries.size(); ++i) {
      if (HasName(kKeyFields, v.entries[i].key)) continue;
      std::string hint = v.entries[i].key.size() <= 32 ? DidYouMean(v.entries[i].key, kKeyFields) : "";
      return Fail(v.key_marks[i], path,
                  "unknown field " + QuoteUnknown(v.entries[i].key, kKeyFields) + hint +
                      " (a key object has: key, keyFile, keyCommand, name, account, baseUrl, limits)");
    }
    std::vector<size_t> sources;  // entries giving the key: exactly one
    for (size_t i = 0; i < v.entries.size(); ++i) {
      if (HasName(kKeySources, v.entries[i].key) && v.entries[i].value.kind != Kind::kNull) sources.push_back(i);
    }
    if (sources.empty()) {
      return Fail(v, path,
                  "missing \"key\", \"keyFile\" or \"keyCommand\" (the key itself or $VARIABLE, a file holding "
                  "it, or a command printing it)");
    }
    if (sources.size() > 1) {
      const std::string& first = v.entries[sources[0]].key;
      const std::string& second = v.entries[sources[1]].key;
      return Fail(v.key_marks[sources[1]], Child(path, second),
                  "\"" + first + "\" and \"" + second +
                      "\" are both given: a key object has exactly one of key, keyFile, keyCommand");
    }
    source = v.entries[sources[0]].key;
    secret = &v.entries[sources[0]].value;
    secret_path = Child(path, source);
    if (const ConfigDocument* name = Find(v, "name")) {
      auto label = GetLabel(*name, Child(path, "name"));
      if (!label) return label.error();
      key.label = label.value();
    }
    if (const ConfigDocument* account = Find(v, "account")) {
      auto a = GetLabel(*account, Child(path, "account"));
      if (!a) return a.error();
      key.account = a.value();
    }
    if (const ConfigDocument* url = Find(v, "baseUrl")) {
      auto u = GetBaseUrl(*url, Child(path, "baseUrl"));
      if (!u) return u.error();
      key.base_url = u.value();
      url_node = url;
    }
    if (const ConfigDocument* limits = Find(v, "limits")) {
      auto l = LoadLimits(*limits, Child(path, "limits"));
      if (!l) return l.error();
      key.limits = l.value();
    }
  }
  key.host = providers::UrlHost(key.base_url.empty() ? pc.base_url : key.base_url);
  if (source != "key") {
    Status s = source == "keyFile" ? ResolveKeyFile(*secret, secret_path, key)
                                   : ResolveKeyCommand(*secret, secret_path, key);
    if (!s) return s.error();
    return key;
  }
  if (secret->kind != Kind::kString) {
    return WrongType(*secret, secret_path,
                     secret == &v ? "a string or an object {key, name, account, baseUrl}"
                                  : "a string (the key or $VARIABLE)");
  }
  if (auto s = ResolveSecret(*secret, secret_path, key); !s) return s.error();
  return key;
}

bool IsVarName(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

/// A key goes into an HTTP header: visible ASCII only.
bool IsHeaderSafe(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

Status Loader::ResolveSecret(const ConfigDocument& v, const std::string& path, keypool::KeySpec& key) {
  const std::string& text = v.text;
  if (text.empty()) return Fail(v, path, "an empty key: give the key or a $VARIABLE, or remove the element");
  if (text[0] != '$') {
    if (!IsHeaderSafe(text)) return Fail(v, path, "the key contains spaces or control characters");
    key.secret = text;
    ++literal_keys_;
    return Ok{};
  }
  std::string_view ref(text);
  ref.remove_prefix(1);
  if (ref.size() >= 2 && ref.front() == '{' && ref.back() == '}') ref = ref.substr(1, ref.size() - 2);
  if (!IsVarName(ref)) {
    return Fail(v, path, "not an environment variable reference: write $NAME or ${NAME} (letters, digits, _)");
  }
  std::string var(ref);
  key.env_var = var;
  if (std::find(env_refs_.begin(), env_refs_.end(), var) == env_refs_.end()) env_refs_.push_back(var);
  std::optional<std::string> value = env_ ? env_(var) : std::nullopt;
  if (value) {
    // `export KEY=$(cat file)` style values: surrounding whitespace is never part of a key.
    size_t b = value->find_first_not_of(" \t\r\n");
    size_t e = value->find_last_not_of(" \t\r\n");
    *value = b == std::string::npos ? "" : value->substr(b, e - b + 1);
  }
  if (!value) {
    key.disabled_reason = "environment variable " + var + " is not set";
  } else if (value->empty()) {
    key.disabled_reason = "environment variable " + var + " is empty";
  } else if (!IsHeaderSafe(*value)) {
    key.disabled_reason = "environment variable " + var + " contains spaces or control characters";
  } else {
    key.secret = *value;
    return Ok{};
  }
  warnings_.push_back(ConfigLocation(file_, v.mark, path) + key.disabled_reason + "; key " + key.label +
                      " is disabled");
  return Ok{};
}

Status Loader::ResolveKeyFile(const ConfigDocument& v, const std::string& path, keypool::KeySpec& key) const {
  if (v.kind != Kind::kString || v.text.empty()) {
    return v.kind == Kind::kString ? Fail(v, path, "must not be empty")
                                   : WrongType(v, path, "a string (the path of a file holding the key)");
  }
  auto file = ResolveKeyFilePath(v.text, std::filesystem::path(file_).parent_path().string(),
                                 env_ ? env_("HOME").value_or("") : "");
  if (!file) return Fail(v, path, file.error().message);
  auto secret = ReadKeyFile(file.value());  // its messages never hold the content
  if (!secret) return Fail(v, path, secret.error().message);
  if (!IsHeaderSafe(secret.value())) {
    return Fail(v, path, "keyFile " + file.value() + ": the key contains spaces or control characters");
  }
  key.secret = std::move(secret.value());
  return Ok{};
}

Status Loader::ResolveKeyCommand(const ConfigDocument& v, const std::string& path, keypool::KeySpec& key) {
  if (v.kind != Kind::kList) {
    return WrongType(v, path, "a list of strings (the program and its arguments, no shell: [pass, show, openai/key-1])");
  }
  if (v.items.empty()) return Fail(v, path, "an empty list: give the program and its arguments");
  std::vector<std::string> argv;
  for (size_t i = 0; i < v.items.size(); ++i) {
    const ConfigDocument& item = v.items[i];
    if (item.kind != Kind::kString && item.kind != Kind::kInt && item.kind != Kind::kFloat) {
      return WrongType(item, path + "[" + std::to_string(i) + "]", "a string");
    }
    argv.push_back(item.text);
  }
  if (argv[0].empty()) return Fail(v.items[0], path + "[0]", "the program name is empty");
  auto secret = RunKeyCommand(argv);  // once, at load; its messages never hold stdout
  if (secret && IsHeaderSafe(secret.value())) {
    key.secret = std::move(secret.value());
    return Ok{};
  }
  key.disabled_reason = secret ? DescribeCommand(argv) + " printed a key with spaces or control characters"
                               : secret.error().message;
  warnings_.push_back(ConfigLocation(file_, v.mark, path) + key.disabled_reason + "; key " + key.label +
                      " is disabled");
  return Ok{};
}

void Loader::WarnPlainHttp(const ProviderConfig& pc, const ConfigDocument& map, ConfigMark name_mark,
                           const std::string& path, const std::vector<const ConfigDocument*>& key_url_nodes) {
  auto exposed = [](const std::string& url) { return url.rfind("http://", 0) == 0 && !providers::IsLoopbackUrl(url); };
  auto warn = [&](ConfigMark mark, const std::string& field_path, const std::string& url) {
    warnings_.push_back(ConfigLocation(file_, mark, field_path) + "keys go to " + providers::UrlHost(url) +
                        " over plain http://, and that host is not loopback: anyone on the way can read them "
                        "(use https://)");
  };
  bool provider_url_used = false;
  std::vector<std::string> warned;  // per-key URLs, once each
  for (size_t i = 0; i < pc.keys.size(); ++i) {
    const std::string& own = pc.keys[i].base_url;
    if (own.empty()) {
      provider_url_used = true;
    } else if (exposed(own) && std::find(warned.begin(), warned.end(), own) == warned.end()) {
      warned.push_back(own);
      const ConfigDocument* node = i < key_url_nodes.size() ? key_url_nodes[i] : nullptr;
      warn(node ? node->mark : name_mark, path + ".apiKey", own);
    }
  }
  if (provider_url_used && exposed(pc.base_url)) {
    const ConfigDocument* node = Find(map, "baseUrl");
    warn(node ? node->mark : name_mark, Child(path, "baseUrl"), pc.base_url);
  }
}

Status Loader::LoadHeaders(ProviderConfig& pc, const ConfigDocument& v, const std::string& path) const {
  if (v.kind != Kind::kMap) return WrongType(v, path, "a map of header names to values");
  std::map<std::string, std::string> seen;  // lower-case name -> as written
  for (size_t i = 0; i < v.entries.size(); ++i) {
    const auto& [name, value] = v.entries[i];
    std::string value_path = Child(path, name);
    bool token = !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
      return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    });
    if (!token) return Fail(v.key_marks[i], path, "not a valid HTTP header name: " + QuoteForMessage(name));
    std::string folded(name);
    std::transform(folded.begin(), folded.end(), folded.begin(), [](unsigned char c) { return std::tolower(c); });
    if (auto it = seen.find(folded); it != seen.end()) {
      return Fail(v.key_marks[i], path,
                  "header " + QuoteForMessage(name) + " is given twice (also " + QuoteForMessage(it->second) + ")");
    }
    seen.emplace(folded, name);
    if (value.kind == Kind::kNull || value.kind == Kind::kList || value.kind == Kind::kMap) {
      return WrongType(value, value_path, "a string");
    }
    if (value.text.find_first_of("\r\n", 0) != std::string::npos || value.text.find('\0') != std::string::npos) {
      return Fail(value, value_path, "a header value cannot contain line breaks");
    }
    pc.headers[name] = value.text;
  }
  return Ok{};
}

Status Loader::LoadFailover(keypool::FailoverPolicy& policy, const ConfigDocument& v, const std::string& path) const {
  if (v.kind != Kind::kMap) return WrongType(v, path, "a map of failover settings");
  auto hint = [](const std::string& field) -> std::string {
    if (HasName(kProviderFields, field)) {
      return " — " + QuoteVerbatim(field) + " is a provider field, not a failover one";
    }
    return "";
  };
  if (auto s = CheckFields(v, path, kFailoverFields, hint); !s) return s.error();
  for (const FailoverField& f : kFailoverTable) {
    const ConfigDocument* field = Find(v, f.name);
    if (!field) continue;
    auto n = GetInt(*field, Child(path, f.name), f.min, f.max);
    if (!n) return n.error();
    if (f.ms) policy.*f.ms = n.value();
    if (f.count) policy.*f.count = static_cast<int>(n.value());
  }
  if (policy.rate_limit_cooldown_max_ms < policy.rate_limit_cooldown_ms) {
    const ConfigDocument* max = Find(v, "rateLimitCooldownMaxMs");
    const ConfigDocument* min = Find(v, "rateLimitCooldownMs");
    const ConfigDocument& at = max ? *max : *min;
    return Fail(at, Child(path, max ? "rateLimitCooldownMaxMs" : "rateLimitCooldownMs"),
                "rateLimitCooldownMaxMs (" + std::to_string(policy.rate_limit_cooldown_max_ms) +
                    ") is below rateLimitCooldownMs (" + std::to_string(policy.rate_limit_cooldown_ms) + ")");
  }
  return Ok{};
}

bool IsFile(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

std::optional<std::string> NonEmpty(const EnvLookup& env, const std::string& name) {
  std::optional<std::string> v = env ? env(name) : std::nullopt;
  if (v && v->empty()) return std::nullopt;
  return v;
}

}  // namespace

ConfigFieldNames LoaderFieldNames() {
  auto list = [](Names names) { return std::vector<std::string_view>(names.begin(), names.end()); };
  return {list(kTopFields), list(kProviderFields), list(kFailoverFields),
          list(kKeyFields), list(kLimitFields),    list(kStateFields)};
}

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::vector<std::string> EnvironmentWarnings(const EnvLookup& env) {
  // libcurl reads these (all but upper-case HTTP_PROXY, which it ignores on purpose, but
  // which other tools on the machine may honour): a proxy sees every request to a plain
  // http:// baseUrl whole, keys included. Only the names: a value may hold credentials.
  std::string set;
  for (const char* name : {"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"}) {
    std::optional<std::string> v = env ? env(name) : std::nullopt;
    if (v && !v->empty()) set += (set.empty() ? "" : ", ") + std::string(name);
  }
  if (set.empty()) return {};
  return {"proxy environment variable(s) set: " + set +
          "; upstream requests may go through that proxy, which sees plain http:// requests whole, keys "
          "included (NO_PROXY lists hosts to reach directly)"};
}

Result<Config> ParseConfigText(std::string_view text, std::string_view display_path, const EnvLookup& env) {
  auto root = ParseConfigDocument(text, display_path);
  if (!root) return root.error();
  return Loader(display_path, env).Load(root.value());
}

Result<Config> LoadConfigFile(const std::string& path, const EnvLookup& env) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) return MakeError(ErrorKind::kNotFound, path + ": no such file");
  if (std::filesystem::is_directory(status)) {
    return MakeError(ErrorKind::kIo, path + ": is a directory, not a config file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(ErrorKind::kIo, path + ": cannot open: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return MakeError(ErrorKind::kIo, path + ": cannot read");
  Result<Config> config = ParseConfigText(text.str(), path, env);
  struct stat st = {};
  if (config && config->literal_keys > 0 && ::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    config->warnings.push_back(path + ": holds " + std::to_string(config->literal_keys) +
                               " key(s) written out and is readable by " +
                               ((st.st_mode & S_IROTH) != 0 ? "other users" : "its group") + " (mode " + mode +
                               "): chmod 600 it, or use $VARIABLE references");
  }
  return config;
}

Result<std::string> FindConfigPath(const std::optional<std::string>& flag, const EnvLookup& env) {
  auto check_given = [](const std::string& p, const std::string& source) -> Result<std::string> {
    if (IsFile(p)) return p;
    std::error_code ec;
    if (std::filesystem::exists(p, ec)) {
      return MakeError(ErrorKind::kNotFound, p + " (from " + source + ") is not a file");
    }
    return MakeError(ErrorKind::kNotFound, "config file " + p + " (from " + source + ") does not exist");
  };
  if (flag && !flag->empty()) return check_given(*flag, "--config");
  if (auto p = NonEmpty(env, "KEYPOOL_CONFIG")) return check_given(*p, "$KEYPOOL_CONFIG");

  std::vector<std::string> looked = {"--config (not given)", "$KEYPOOL_CONFIG (not set)"};
  std::vector<std::filesystem::path> dirs;
  auto xdg = NonEmpty(env, "XDG_CONFIG_HOME");
  // The XDG spec ignores a relative $XDG_CONFIG_HOME.
  if (xdg && std::filesystem::path(*xdg).is_absolute()) {
    dirs.push_back(std::filesystem::path(*xdg) / "keypool-mcp");
  } else {
    looked.push_back(xdg ? "$XDG_CONFIG_HOME (not absolute, ignored)" : "$XDG_CONFIG_HOME (not set)");
  }
  if (auto home = NonEmpty(env, "HOME")) {
    auto dir = std::filesystem::path(*home) / ".config" / "keypool-mcp";
    if (dirs.empty() || dirs.front().lexically_normal() != dir.lexically_normal()) dirs.push_back(dir);
  } else {
    looked.push_back("$HOME (not set)");
  }
  for (const auto& dir : dirs) {
    for (const char* name : {"config.yaml", "config.yml", "config.json"}) {
      auto p = dir / name;
      if (IsFile(p)) return p.string();
      looked.push_back(p.string());
    }
  }
  std::string message = "no config file found; looked at:";
  for (const std::string& l : looked) message += "\n  " + l;
  message += "\npass --config PATH, or create one of the files above (see examples/ for templates)";
  return MakeError(ErrorKind::kNotFound, message);
}

}  // namespace kpm::server
