#include "server/client_hints.h"

#include <algorithm>
#include <cctype>

namespace kpm::server {
namespace {

bool Contains(std::string_view haystack, std::string_view needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
  return it != haystack.end();
}

}  // namespace

std::string EnvPassThroughHint(std::string_view client_name, std::string_view var) {
  const std::string v(var);
  if (Contains(client_name, "gemini")) {
    return "Gemini CLI does not pass variables whose names look like secrets to MCP servers: add \"env\": {\"" + v +
           "\": \"$" + v + "\"} to this server in ~/.gemini/settings.json (`keypool-mcp register gemini` prints "
           "the whole entry), or use keyFile/keyCommand";
  }
  if (Contains(client_name, "codex")) {
    return "Codex passes only a few variables to MCP servers: add env_vars = [\"" + v +
           "\"] to this server's [mcp_servers.*] table in ~/.codex/config.toml (`keypool-mcp register codex` "
           "prints it), or use keyFile/keyCommand";
  }
  return "";
}

bool ApplyClientHints(Config& config, std::string_view client_name) {
  bool changed = false;
  for (auto& provider : config.providers) {
    for (auto& key : provider.keys) {
      if (key.env_var.empty() || key.disabled_reason != "environment variable " + key.env_var + " is not set") {
        continue;
      }
      std::string hint = EnvPassThroughHint(client_name, key.env_var);
      if (hint.empty()) continue;
      key.disabled_reason.append(" in this server's environment; ").append(hint);
      changed = true;
    }
  }
  return changed;
}

}  // namespace kpm::server
