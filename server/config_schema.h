#pragma once
/// The config file's JSON Schema (`keypool-mcp --print-config-schema`), for editors: a
/// JSON config names it in `$schema`, a YAML one in a `# yaml-language-server: $schema=`
/// comment. It describes what server/config.cc accepts, field by field, with types,
/// bounds, enums, defaults and descriptions (docs/configuration.md, "JSON Schema").
///
/// Declared as draft 2020-12 but written with the keywords draft 7 shares with it
/// (no prefixItems, dependentRequired, unevaluatedProperties), so draft-7 validators
/// such as valijson 1.0 read it the same way.
///
/// What it cannot say, and the loader still checks: that `default` and `fallback` name
/// providers of the file, that a provider does not fall back to itself, header names
/// that differ only in case, two keys with one label, rateLimitCooldownMaxMs >= rateLimitCooldownMs, `sticky`
/// with `state: none`, that `keyFile` is a private file and a `$VAR` is set. Where the
/// loader is lenient the schema is stricter by design: a `null` value (which the loader
/// reads as omitted) is flagged, since an empty `model:` is usually an unfinished edit.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kpm::server {

/// The schema as a JSON document (pretty-print it with dump(2)).
nlohmann::json ConfigSchema();

/// The field names the loader knows at each level, straight from config.cc's own
/// tables (defined there), so a test can hold the schema to them.
struct ConfigFieldNames {
  std::vector<std::string_view> top;
  std::vector<std::string_view> provider;
  std::vector<std::string_view> failover;
  std::vector<std::string_view> key;
  std::vector<std::string_view> limits;
  std::vector<std::string_view> state;
};
ConfigFieldNames LoaderFieldNames();

}  // namespace kpm::server
