#pragma once
/// The config file (SPEC §2): JSON or YAML -> plain structs, fully validated.
/// docs/configuration.md is the user-facing reference for every field and default.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "providers/provider_config.h"
#include "state/store_spec.h"

namespace kpm::server {

/// A loaded, validated configuration. Contains key material (ProviderConfig::keys):
/// never log or print it whole.
struct Config {
  std::string path;                                  ///< the file it came from, as given
  std::vector<providers::ProviderConfig> providers;  ///< in file order; never empty
  std::string default_provider;                      ///< `default`, else the first listed
  std::vector<std::string> fallback;                 ///< top-level `fallback`; names exist
  std::optional<std::string> log_level;              ///< `logLevel`, already validated
  size_t max_concurrent_calls = 256;                 ///< `maxConcurrentCalls` (SPEC §2)
  state::StoreSpec state;                            ///< `state` (docs/state.md); sqlite path resolved
  /// Problems that do not stop the server (an unset or empty key variable, a hosted
  /// provider without keys, keys over plain http:// to a host that is not loopback, a
  /// file readable by others with keys in it), each a whole line for main to log at
  /// warn. No key material.
  std::vector<std::string> warnings;
  /// How many keys are written out in the file (not `$VAR`). LoadConfigFile warns when
  /// such a file is readable by group or others.
  size_t literal_keys = 0;
  /// Every environment variable a key names (`$VAR`), once each, in file order: what a
  /// client that filters the environment must pass through (`register`).
  std::vector<std::string> env_refs;
};

/// Reads one environment variable; nullopt when it is not set. An interface so tests
/// can give a fake environment instead of the process's.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment (getenv).
EnvLookup ProcessEnv();

/// Reads and validates the config file at `path`. Errors (kNotFound, kIo, kConfig) carry
/// one message naming the file, the line:column where known and the field path, e.g.
/// `config.yaml:7:9: mcp.openrouter.apiKey[1]: expected a string or an object {key, name, account, baseUrl}`.
/// `$VAR` / `${VAR}` key references are read through `env`. A file that holds keys
/// written out (Config::literal_keys) and is readable by group or others gets a warning.
Result<Config> LoadConfigFile(const std::string& path, const EnvLookup& env);

/// As LoadConfigFile, for text already in memory. The format follows the extension of
/// `display_path` (.json, .yaml, .yml), else the content (`{` or `[` first: JSON).
/// `display_path` names the file in messages and becomes Config::path.
Result<Config> ParseConfigText(std::string_view text, std::string_view display_path, const EnvLookup& env);

/// Warnings about the process environment rather than the file, for main to log with
/// Config::warnings: proxy variables libcurl honours (HTTPS_PROXY, https_proxy,
/// HTTP_PROXY, http_proxy, ALL_PROXY, all_proxy), named in one line, never their values
/// (they may hold credentials). Empty when none is set.
std::vector<std::string> EnvironmentWarnings(const EnvLookup& env);

/// Which file to load: `flag` (--config) > $KEYPOOL_CONFIG > $XDG_CONFIG_HOME/keypool-mcp/
/// config.{yaml,yml,json} > $HOME/.config/keypool-mcp/config.{yaml,yml,json}. A path given by
/// the flag or $KEYPOOL_CONFIG must exist (no silent fall-through); the error for "nothing
/// found" lists every place looked.
Result<std::string> FindConfigPath(const std::optional<std::string>& flag, const EnvLookup& env);

}  // namespace kpm::server
