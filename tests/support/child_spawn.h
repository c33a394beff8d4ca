#pragma once
/// What every child a test starts (keypool-mcp, mock-upstream, redis-server) needs from
/// posix_spawn: SIGPIPE, SIGTERM, SIGINT and SIGHUP at their default actions and no
/// signal blocked, whatever the test process (or the ctest that started it) ignores or
/// blocks — a child that inherited an ignored SIGTERM would not stop when told.

#include <spawn.h>

namespace kpm::testing {

/// Initialises `attr` so; the caller destroys it with posix_spawnattr_destroy.
void InitChildSpawnAttr(posix_spawnattr_t* attr);

}  // namespace kpm::testing
