#pragma once
/// Which store keeps key state (`state:` in the config, docs/state.md) and opening it.

#include <memory>
#include <string>
#include <string_view>

#include "common/name_table.h"
#include "common/result.h"
#include "keypool/key_state_store.h"

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

/// The store `spec` names: an InMemoryKeyStateStore for kNone, else a
/// SharedKeyStateStore on its backend. Opening never fails: a backend that is not
/// usable yet makes the store work from memory (with one warning) until it is.
/// An invalid spec (a redis URL that does not parse) is a kConfig error.
Result<std::shared_ptr<keypool::KeyStateStore>> OpenStore(const StoreSpec& spec);

}  // namespace kpm::state
