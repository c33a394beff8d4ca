#pragma once
/// `keypool-mcp init`: a starter config from the provider key variables set in the
/// environment (docs/configuration.md, "init"). Keys are referenced as `$VAR`, never
/// written out.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "server/config.h"

namespace kpm::server {

/// Numbered variants probed per family: NAME_1 .. NAME_<this>.
inline constexpr int kMaxNumberedKeyVars = 32;

struct StarterConfig {
  std::string yaml;                    ///< loads with ParseConfigText
  std::vector<std::string> variables;  ///< the variables it names, in file order
};

/// The starter YAML: one provider per family found (OPENAI_API_KEY, OPENROUTER_API_KEY,
/// ANTHROPIC_API_KEY, GEMINI_API_KEY, each also as NAME_1 .. NAME_32; a variable set but
/// empty does not count), the base name first, then the numbered ones in order. A first
/// line `# yaml-language-server: $schema=<schema_ref>`; a top-level `fallback` listing
/// every provider when there is more than one. kNotFound, naming every variable looked
/// for, when none is set.
Result<StarterConfig> BuildStarterConfig(const EnvLookup& env, std::string_view schema_ref);

/// Writes `text` to `path` with mode `mode`, creating missing parent directories
/// (0700). An existing file is an error (kInvalidArgument, "... exists; pass --force")
/// unless `overwrite`; an overwritten file gets `mode` too.
Status WriteNewFile(const std::string& path, std::string_view text, unsigned mode, bool overwrite);

/// Where `init` writes: `flag` (--config) > $KEYPOOL_CONFIG > $XDG_CONFIG_HOME/keypool-mcp/
/// config.yaml (absolute only) > $HOME/.config/keypool-mcp/config.yaml: the first place
/// FindConfigPath looks, so the server finds what init wrote. A .json path is refused
/// (init writes YAML).
Result<std::string> InitConfigPath(const std::optional<std::string>& flag, const EnvLookup& env);

/// The schema file init writes beside the config, named in its yaml-language-server line.
inline constexpr std::string_view kSchemaFileName = "config.schema.json";

struct InitResult {
  std::string config_path;             ///< written 0600
  std::string schema_path;             ///< kSchemaFileName beside it, 0644, always rewritten
  std::vector<std::string> variables;  ///< what the config names
};

/// The whole of `keypool-mcp init`: BuildStarterConfig, then the config at
/// InitConfigPath (refused when it exists, unless `force`) and the schema beside it.
/// Nothing is written when no variable is found or the config exists.
Result<InitResult> RunInit(const std::optional<std::string>& flag, bool force, const EnvLookup& env);

}  // namespace kpm::server
