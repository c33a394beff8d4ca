#include "server/init.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "server/config_schema.h"

namespace kpm::server {
namespace {

struct Family {
  const char* variable;
  const char* provider;  ///< also its type
};
constexpr Family kFamilies[] = {
    {"OPENAI_API_KEY", "openai"},
    {"OPENROUTER_API_KEY", "openrouter"},
    {"ANTHROPIC_API_KEY", "anthropic"},
    {"GEMINI_API_KEY", "gemini"},
};

bool IsSet(const EnvLookup& env, const std::string& name) {
  std::optional<std::string> v = env ? env(name) : std::nullopt;
  return v && v->find_first_not_of(" \t\r\n") != std::string::npos;
}

}  // namespace

Result<StarterConfig> BuildStarterConfig(const EnvLookup& env, std::string_view schema_ref) {
  StarterConfig out;
  std::string body;
  std::vector<std::string> providers;
  for (const Family& f : kFamilies) {
    std::vector<std::string> vars;
    if (IsSet(env, f.variable)) vars.push_back(f.variable);
    for (int i = 1; i <= kMaxNumberedKeyVars; ++i) {
      std::string name = std::string(f.variable) + "_" + std::to_string(i);
      if (IsSet(env, name)) vars.push_back(name);
    }
    if (vars.empty()) continue;
    providers.push_back(f.provider);
    body += "  " + std::string(f.provider) + ":\n    type: " + f.provider + "\n    apiKey:\n";
    for (const std::string& v : vars) body += "      - $" + v + "\n";
    out.variables.insert(out.variables.end(), vars.begin(), vars.end());
  }
  if (providers.empty()) {
    std::string looked;
    for (const Family& f : kFamilies) looked += (looked.empty() ? "" : ", ") + std::string(f.variable);
    return MakeError(ErrorKind::kNotFound,
                     "no provider key variable is set: looked for " + looked + " (each also as NAME_1 to NAME_" +
                         std::to_string(kMaxNumberedKeyVars) +
                         "); export one and run init again, or start from a file in examples/");
  }
  std::string names;
  for (const std::string& v : out.variables) names += (names.empty() ? "" : ", ") + v;
  out.yaml = "# yaml-language-server: $schema=" + std::string(schema_ref) + "\n";
  out.yaml += "# Written by `keypool-mcp init` from the variables set when it ran: " + names + ".\n";
  out.yaml += "# Keys stay in the environment: \"$NAME\" reads NAME when the server starts, so the MCP\n"
              "# client must pass these variables through (`keypool-mcp register CLIENT` shows how).\n"
              "# Every field: docs/configuration.md. Test the keys: keypool-mcp --check\n";
  out.yaml += "providers:\n" + body;
  if (providers.size() > 1) {
    std::string list;
    for (const std::string& p : providers) list += (list.empty() ? "" : ", ") + p;
    out.yaml += "# Once a provider is done for a call (no usable key, its server failing), the others are\n"
                "# tried in this order; a provider skips itself.\n";
    out.yaml += "fallback: [" + list + "]\n";
  }
  return out;
}

Status WriteNewFile(const std::string& path, std::string_view text, unsigned mode, bool overwrite) {
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::exists(parent, ec)) {
    std::filesystem::create_directories(parent, ec);
    if (ec) return MakeError(ErrorKind::kIo, parent.string() + ": cannot create the directory: " + ec.message());
    ::chmod(parent.c_str(), 0700);
  }
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (overwrite ? O_TRUNC : O_EXCL);
  int fd = ::open(path.c_str(), flags, static_cast<mode_t>(mode));
  if (fd < 0) {
    if (errno == EEXIST) {
      return MakeError(ErrorKind::kInvalidArgument, path + " exists; pass --force to overwrite it");
    }
    return MakeError(ErrorKind::kIo, path + ": cannot create: " + std::strerror(errno));
  }
  Status result = Ok{};
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    result = MakeError(ErrorKind::kIo, path + ": cannot set its mode: " + std::strerror(errno));
  }
  for (size_t done = 0; result && done < text.size();) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      result = MakeError(ErrorKind::kIo, path + ": cannot write: " + std::strerror(errno));
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0 && result) result = MakeError(ErrorKind::kIo, path + ": cannot write: " + std::strerror(errno));
  return result;
}

Result<std::string> InitConfigPath(const std::optional<std::string>& flag, const EnvLookup& env) {
  auto get = [&](const char* name) -> std::string {
    std::optional<std::string> v = env ? env(name) : std::nullopt;
    return v.value_or("");
  };
  std::string path;
  if (flag && !flag->empty()) {
    path = *flag;
  } else if (std::string p = get("KEYPOOL_CONFIG"); !p.empty()) {
    path = p;
  } else if (std::string xdg = get("XDG_CONFIG_HOME"); !xdg.empty() && std::filesystem::path(xdg).is_absolute()) {
    path = (std::filesystem::path(xdg) / "keypool-mcp" / "config.yaml").string();
  } else if (std::string home = get("HOME"); !home.empty()) {
    path = (std::filesystem::path(home) / ".config" / "keypool-mcp" / "config.yaml").string();
  } else {
    return MakeError(ErrorKind::kInvalidArgument, "neither $XDG_CONFIG_HOME nor $HOME is set: pass --config PATH");
  }
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".json") {
    return MakeError(ErrorKind::kInvalidArgument, path + ": init writes YAML; give a .yaml or .yml path");
  }
  return path;
}

Result<InitResult> RunInit(const std::optional<std::string>& flag, bool force, const EnvLookup& env) {
  auto path = InitConfigPath(flag, env);
  if (!path) return path.error();
  auto starter = BuildStarterConfig(env, kSchemaFileName);
  if (!starter) return starter.error();
  InitResult out;
  out.config_path = *path;
  out.schema_path = (std::filesystem::path(*path).parent_path() / kSchemaFileName).string();
  out.variables = starter->variables;
  if (Status s = WriteNewFile(out.config_path, starter->yaml, 0600, force); !s) return s.error();
  std::string schema = ConfigSchema().dump(2) + "\n";
  if (Status s = WriteNewFile(out.schema_path, schema, 0644, true); !s) return s.error();
  return out;
}

}  // namespace kpm::server
