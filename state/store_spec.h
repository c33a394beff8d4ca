#pragma once
/// Which store keeps key state: the `state:` setting as the config loader validates it
/// (docs/state.md). Plain data and parsing only: no SQLite, no Redis client, so the
/// config loader (and its fuzzer) need nothing else.

#include <string>
#include <string_view>

#include "common/name_table.h"
#include "common/result.h"

namespace kpm::state {

enum class StoreType { kNone, kSqlite, kRedis };
inline constexpr std::string_view kStoreTypeNames[] = {"none", "sqlite", "redis"};
inline std::string_view StoreTypeName(StoreType t) { return NameOf(kStoreTypeNames, t); }

/// The `state:` setting, validated.
struct StoreSpec {
  StoreType type = StoreType::kSqlite;
  std::string path;               ///< sqlite: the file (the loader fills the default)
  std::string url;                ///< redis: redis://[:password@]host[:port][/db]
  std::string prefix = "keypool"; ///< redis: every key of ours starts with "<prefix>:"
};

/// $XDG_STATE_HOME/keypool-mcp/state.db, else $HOME/.local/state/keypool-mcp/state.db
/// (empty arguments are unset). Empty when neither is known.
std::string DefaultSqlitePath(const std::string& xdg_state_home, const std::string& home);

/// Where the Redis store is. Built by ParseRedisUrl, or by hand in tests.
struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string username;  ///< empty: `AUTH password` (no ACL user)
  std::string password;  ///< empty: no AUTH. Never shown.
  std::string prefix = "keypool";
  int connect_timeout_ms = 250;
  int command_timeout_ms = 250;
};

/// Parses `redis://[:password@]host[:port][/db]` or `redis://user:password@host[:port][/db]`
/// (user and password may be percent-encoded; an IPv6 host goes in brackets). Port
/// defaults to 6379, db to 0. A malformed URL, `rediss://`, a query string or an empty
/// `prefix` is a kConfig error whose message never contains the password.
Result<RedisOptions> ParseRedisUrl(std::string_view url, std::string prefix);

}  // namespace kpm::state
