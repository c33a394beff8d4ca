#include "state/store_spec.h"

#include <charconv>
#include <optional>

#include "common/strings.h"

namespace kpm::state {
namespace {

Error ConfigError(std::string message) { return MakeError(ErrorKind::kConfig, std::move(message)); }

/// A decimal number of at most `max_digits` digits, nothing else.
std::optional<int> ParseNumber(std::string_view s, size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  int value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

/// Percent-decoding for the user and password parts of the URL.
std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    std::optional<std::string> byte = HexDecode(s.substr(i + 1, 2));
    if (!byte) return std::nullopt;
    out += *byte;
    i += 2;
  }
  return out;
}

}  // namespace

std::string DefaultSqlitePath(const std::string& xdg_state_home, const std::string& home) {
  if (!xdg_state_home.empty() && xdg_state_home[0] == '/') return xdg_state_home + "/keypool-mcp/state.db";
  if (!home.empty()) return home + "/.local/state/keypool-mcp/state.db";
  return "";
}

Result<RedisOptions> ParseRedisUrl(std::string_view url, std::string prefix) {
  // No message below quotes the URL or any part of it: it may carry a password.
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, 9) == "rediss://") return ConfigError("redis URL: rediss:// (TLS) is not supported");
  if (url.substr(0, kScheme.size()) != kScheme) return ConfigError("redis URL must start with redis://");
  if (prefix.empty()) return ConfigError("redis prefix must not be empty");
  if (std::any_of(prefix.begin(), prefix.end(), [](unsigned char c) { return c <= ' ' || c == 127; })) {
    return ConfigError("redis prefix must not contain spaces or control characters");
  }
  RedisOptions o;
  o.prefix = std::move(prefix);
  std::string_view rest = url.substr(kScheme.size());
  // The last '@' ends the credentials, so an unencoded '@' in a password still works.
  size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      return ConfigError("redis URL: write the credentials as ':password@' or 'user:password@'");
    }
    auto user = PercentDecode(userinfo.substr(0, colon));
    auto password = PercentDecode(userinfo.substr(colon + 1));
    if (!user || !password) return ConfigError("redis URL: bad %-escape in the user or password");
    if (password->empty()) return ConfigError("redis URL: the password after ':' is empty");
    o.username = std::move(*user);
    o.password = std::move(*password);
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return ConfigError("redis URL: query parameters and fragments are not supported");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return ConfigError("redis URL: unclosed '[' in the host");
    o.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return ConfigError("redis URL: expected ':port' after the host");
      port = after.substr(1);
      if (port.empty()) return ConfigError("redis URL: empty port after ':'");
    }
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos && authority.find(':', colon + 1) != std::string_view::npos) {
      return ConfigError("redis URL: put an IPv6 host in brackets, as [::1]:6379");
    }
    o.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return ConfigError("redis URL: empty port after ':'");
    }
  }
  if (o.host.empty()) return ConfigError("redis URL has no host");
  if (!port.empty()) {
    auto number = ParseNumber(port, 5);
    if (!number || *number < 1 || *number > 65535) {
      return ConfigError("redis URL: the port must be a number from 1 to 65535");
    }
    o.port = *number;
  }
  if (!path.empty()) {
    auto number = ParseNumber(path, 9);
    if (!number || *number < 0) return ConfigError("redis URL: the database after '/' must be a number");
    o.db = *number;
  }
  return o;
}

}  // namespace kpm::state
