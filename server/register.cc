// `keypool-mcp register CLIENT`: one snippet per client. Each client's format was read
// from the client itself (docs/clients.md names the versions) and is checked against its
// real parser by scripts/check_clients.sh.
#include "server/register.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <nlohmann/json.hpp>

namespace kpm::server {
namespace {

using Json = nlohmann::json;

std::string ClientList() {
  std::string out;
  for (const std::string& c : kRegisterClients) out.append(out.empty() ? "" : ", ").append(c);
  return out;
}

std::string NameList(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out.append(out.empty() ? "" : ", ").append(n);
  return out;
}

/// `s` in single quotes for a POSIX shell (a ' inside becomes '\'').
std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out.append("'\\''");
    else out.push_back(c);
  }
  return out.append("'");
}

/// j.dump that never throws (BuildRegistration refuses text that is not UTF-8 first).
std::string Dump(const Json& j, int indent = -1) { return j.dump(indent, ' ', false, Json::error_handler_t::replace); }

/// Whether `s` is valid UTF-8: replacing and dropping bad bytes give the same text only
/// when there are none.
bool IsUtf8(const std::string& s) {
  return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace) ==
         Json(s).dump(-1, ' ', false, Json::error_handler_t::ignore);
}

/// A TOML basic string. JSON's string escapes (\" \\ \n \t \uXXXX) are TOML's too.
std::string TomlString(const std::string& s) { return Dump(Json(s)); }

std::string TomlArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out.append(i ? ", " : "").append(TomlString(items[i]));
  return out.append("]");
}

std::vector<std::string> ServerArgs(const RegisterInput& in) { return {"--config", in.config_path}; }

/// `{command, args}` as most JSON clients spell a stdio server.
Json StdioServer(const RegisterInput& in) {
  Json server = Json::object();
  server["command"] = in.binary_path;
  server["args"] = ServerArgs(in);
  return server;
}

std::string Pretty(const Json& j) { return Dump(j, 2) + "\n"; }

/// The note of the clients that pass their own environment on as it is.
std::string InheritNote(const RegisterInput& in, const std::string& client) {
  return "the keys named by " + NameList(in.env_vars) + " are read from " + client +
         "'s own environment: an app started from the desktop does not see variables exported in a shell "
         "profile; use keyFile or keyCommand for those keys (docs/configuration.md) or start " + client +
         " from that shell";
}

Registration Claude(const RegisterInput& in) {
  Json server = StdioServer(in);
  server = Json{{"type", "stdio"}, {"command", server["command"]}, {"args", server["args"]}};
  // Claude Code's per-server tool-call timeout, in milliseconds (overrides MCP_TOOL_TIMEOUT).
  server["timeout"] = ClientTimeoutMs(in.deadline_ms);
  Registration r;
  r.text = "# keypool-mcp register claude: run in a shell (user scope: every project)\n"
           "claude mcp add-json " + std::string(kRegisterServerName) + " " + ShellQuote(Dump(server)) +
           " --scope user\n";
  r.notes.push_back("run the command on stdout in a shell; then `claude mcp list` shows " +
                    std::string(kRegisterServerName) + " as connected");
  if (!in.env_vars.empty()) {
    r.notes.push_back("Claude Code passes its environment to the server: set " + NameList(in.env_vars) +
                      " where claude starts");
  }
  return r;
}

Registration Gemini(const RegisterInput& in) {
  Json server = StdioServer(in);
  if (!in.env_vars.empty()) {
    // Gemini CLI drops every variable whose name looks like a secret (…_KEY…, …TOKEN…)
    // from a server's environment unless `env` names it; "$VAR" is expanded by Gemini.
    Json env = Json::object();
    for (const std::string& v : in.env_vars) env[v] = "$" + v;
    server["env"] = env;
  }
  server["timeout"] = ClientTimeoutMs(in.deadline_ms);  // milliseconds, per request
  Registration r;
  r.text = Pretty(Json{{"mcpServers", {{std::string(kRegisterServerName), server}}}});
  r.notes.push_back("goes in ~/.gemini/settings.json (every project) or .gemini/settings.json in a project: "
                    "merge the \"mcpServers\" entry; then `gemini mcp list` shows " +
                    std::string(kRegisterServerName) + " as connected");
  if (!in.env_vars.empty()) {
    r.notes.push_back("the \"env\" lines pass " + NameList(in.env_vars) +
                      " through: Gemini CLI hides variables whose names look like secrets from MCP servers");
  }
  return r;
}

Registration Codex(const RegisterInput& in) {
  const int64_t timeout_ms = ClientTimeoutMs(in.deadline_ms);
  const int64_t timeout_sec = (timeout_ms + 999) / 1000;
  std::string t = "# keypool-mcp register codex: add to ~/.codex/config.toml (or $CODEX_HOME/config.toml)\n";
  t.append("[mcp_servers.").append(kRegisterServerName).append("]\n");
  t.append("command = ").append(TomlString(in.binary_path)).append("\n");
  t.append("args = ").append(TomlArray(ServerArgs(in))).append("\n");
  if (!in.env_vars.empty()) {
    t.append("# Codex passes only its own short list of variables to a server; these name the keys.\n");
    t.append("env_vars = ").append(TomlArray(in.env_vars)).append("\n");
  }
  t.append("# a keyCommand runs when the server starts\n");
  t.append("startup_timeout_sec = ").append(std::to_string(kClientStartupTimeoutSec)).append("\n");
  t.append("# the config's largest deadlineMs (").append(std::to_string(in.deadline_ms));
  t.append(" ms) plus ").append(std::to_string(kClientTimeoutMarginMs / 1000)).append(" s\n");
  t.append("tool_timeout_sec = ").append(std::to_string(timeout_sec)).append("\n");
  Registration r;
  r.text = std::move(t);
  r.notes.push_back("goes in ~/.codex/config.toml (or $CODEX_HOME/config.toml); then `codex mcp list` shows " +
                    std::string(kRegisterServerName));
  return r;
}

Registration Opencode(const RegisterInput& in) {
  Json command = Json::array({in.binary_path});
  for (const std::string& a : ServerArgs(in)) command.push_back(a);
  Json server{{"type", "local"}, {"command", command}, {"enabled", true}};
  if (!in.env_vars.empty()) {
    Json env = Json::object();
    for (const std::string& v : in.env_vars) env[v] = "{env:" + v + "}";  // opencode's substitution
    server["environment"] = env;
  }
  server["timeout"] = ClientTimeoutMs(in.deadline_ms);  // milliseconds, per request (default 5000)
  Json doc{{"$schema", "https://opencode.ai/config.json"}, {"mcp", {{std::string(kRegisterServerName), server}}}};
  Registration r;
  r.text = Pretty(doc);
  r.notes.push_back("goes in ~/.config/opencode/opencode.json (every project) or opencode.json in a project: "
                    "merge the \"mcp\" entry; then `opencode mcp list` shows " + std::string(kRegisterServerName) +
                    " as connected");
  return r;
}

Registration Cursor(const RegisterInput& in) {
  Registration r;
  r.text = Pretty(Json{{"mcpServers", {{std::string(kRegisterServerName), StdioServer(in)}}}});
  r.notes.push_back("goes in ~/.cursor/mcp.json (every project) or .cursor/mcp.json in a project: merge the "
                    "\"mcpServers\" entry; then Cursor Settings > MCP shows " + std::string(kRegisterServerName));
  if (!in.env_vars.empty()) r.notes.push_back(InheritNote(in, "Cursor"));
  return r;
}

Registration Vscode(const RegisterInput& in) {
  Json server = StdioServer(in);
  server = Json{{"type", "stdio"}, {"command", server["command"]}, {"args", server["args"]}};
  Registration r;
  r.text = Pretty(Json{{"servers", {{std::string(kRegisterServerName), server}}}});
  r.notes.push_back("goes in .vscode/mcp.json in the workspace (or the user mcp.json: command \"MCP: Open User "
                    "Configuration\"): merge the \"servers\" entry; then \"MCP: List Servers\" shows " +
                    std::string(kRegisterServerName));
  if (!in.env_vars.empty()) r.notes.push_back(InheritNote(in, "VS Code"));
  return r;
}

Registration ClaudeDesktop(const RegisterInput& in) {
  Registration r;
  r.text = Pretty(Json{{"mcpServers", {{std::string(kRegisterServerName), StdioServer(in)}}}});
  r.notes.push_back("goes in claude_desktop_config.json: macOS ~/Library/Application Support/Claude/, Windows "
                    "%APPDATA%\\Claude\\ (Settings > Developer > Edit Config): merge the \"mcpServers\" entry "
                    "and restart Claude Desktop");
  if (!in.env_vars.empty()) r.notes.push_back(InheritNote(in, "Claude Desktop"));
  return r;
}

}  // namespace

int64_t LargestDeadlineMs(const Config& config) {
  int64_t largest = 0;
  for (const auto& p : config.providers) largest = std::max(largest, p.failover.deadline_ms);
  return largest > 0 ? largest : keypool::FailoverPolicy{}.deadline_ms;
}

int64_t ClientTimeoutMs(int64_t deadline_ms) { return deadline_ms + kClientTimeoutMarginMs; }

Result<Registration> BuildRegistration(const RegisterInput& in) {
  if (std::find(kRegisterClients.begin(), kRegisterClients.end(), in.client) == kRegisterClients.end()) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "register: unknown client \"" + in.client + "\" (use one of: " + ClientList() + ")");
  }
  for (const std::string* p : {&in.binary_path, &in.config_path}) {
    if (p->empty() || (*p)[0] != '/') {
      return MakeError(ErrorKind::kInvalidArgument, "register: \"" + *p + "\" is not an absolute path");
    }
  }
  std::vector<std::string> texts = in.env_vars;
  texts.push_back(in.binary_path);
  texts.push_back(in.config_path);
  for (const std::string& t : texts) {
    if (!IsUtf8(t)) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "register: a path or variable name is not UTF-8, which JSON and TOML cannot hold");
    }
  }
  Registration r;
  if (in.client == "claude") r = Claude(in);
  else if (in.client == "gemini") r = Gemini(in);
  else if (in.client == "codex") r = Codex(in);
  else if (in.client == "opencode") r = Opencode(in);
  else if (in.client == "cursor") r = Cursor(in);
  else if (in.client == "vscode") r = Vscode(in);
  else r = ClaudeDesktop(in);
  return r;
}

Result<std::string> SelfBinaryPath() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return MakeError(ErrorKind::kIo, "register: cannot read /proc/self/exe: " + ec.message());
  return self.string();
}

Result<Registration> RegisterFor(const std::string& client, const std::string& config_path, const Config& config) {
  auto binary = SelfBinaryPath();
  if (!binary) return binary.error();
  std::error_code ec;
  std::filesystem::path config_abs = std::filesystem::absolute(config_path, ec);
  if (ec) return MakeError(ErrorKind::kIo, "register: cannot make " + config_path + " absolute: " + ec.message());
  RegisterInput in;
  in.client = client;
  in.binary_path = *binary;
  in.config_path = config_abs.lexically_normal().string();
  in.env_vars = config.env_refs;
  in.deadline_ms = LargestDeadlineMs(config);
  return BuildRegistration(in);
}

}  // namespace kpm::server
