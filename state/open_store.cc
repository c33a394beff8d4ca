#include "state/open_store.h"

#include "state/redis_backend.h"
#include "state/shared_store.h"
#include "state/sqlite_backend.h"

namespace kpm::state {

Result<std::shared_ptr<keypool::KeyStateStore>> OpenStore(const StoreSpec& spec) {
  switch (spec.type) {
    case StoreType::kNone:
      return std::shared_ptr<keypool::KeyStateStore>(std::make_shared<keypool::InMemoryKeyStateStore>());
    case StoreType::kSqlite:
      if (spec.path.empty()) {
        return MakeError(ErrorKind::kConfig, "state: sqlite needs a path (neither XDG_STATE_HOME nor HOME is set)");
      }
      return std::shared_ptr<keypool::KeyStateStore>(
          std::make_shared<SharedKeyStateStore>(MakeSqliteBackend(spec.path)));
    case StoreType::kRedis: {
      Result<RedisOptions> options = ParseRedisUrl(spec.url, spec.prefix);
      if (!options) return options.error();
      return std::shared_ptr<keypool::KeyStateStore>(
          std::make_shared<SharedKeyStateStore>(MakeRedisBackend(*options)));
    }
  }
  return MakeError(ErrorKind::kInternal, "unknown state store type");
}

}  // namespace kpm::state
