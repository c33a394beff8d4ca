#pragma once
/// The SQLite backend (`state: sqlite`, the default): one file per user, shared by
/// every keypool-mcp process of that user. WAL mode (readers never wait for a
/// writer), a short busy timeout (a store locked past it is an error, and the caller
/// works from memory), the file created with mode 0600 in a 0700 folder.

#include <memory>
#include <string>

#include "state/state_backend.h"

namespace kpm::state {

/// How long a write waits for another process's write lock before it gives up
/// (looking again every millisecond, so a busy writer cannot starve it).
inline constexpr int kSqliteBusyTimeoutMs = 250;

/// `path` is created (with its folder) on first Open().
std::unique_ptr<StateBackend> MakeSqliteBackend(std::string path);

}  // namespace kpm::state
