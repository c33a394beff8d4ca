#pragma once
/// What to tell a person whose client keeps environment variables from its MCP
/// servers (Gemini CLI drops every name that looks like a secret, Codex passes only its
/// own short list): a key whose `$VAR` is unset there is set in their shell, and the
/// reason must say how to pass it through for that client (docs/clients.md).

#include <string>
#include <string_view>

#include "server/config.h"

namespace kpm::server {

/// How to pass `var` through to this server under the client that named itself
/// `client_name` (initialize's clientInfo.name); empty for a client not known to
/// filter the environment.
std::string EnvPassThroughHint(std::string_view client_name, std::string_view var);

/// Appends that hint to the reason of every key whose variable is unset. True when
/// any reason changed.
bool ApplyClientHints(Config& config, std::string_view client_name);

}  // namespace kpm::server
