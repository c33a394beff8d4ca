#pragma once
/// A real redis-server for integration tests: a child process on 127.0.0.1 and an
/// ephemeral port, no persistence (`--save "" --appendonly no`), its files in a fresh
/// temporary directory. Plus a tiny RESP client on a raw socket (no hiredis, so
/// kpm_test_support needs no extra library) for the readiness check and for tests that look at the
/// server's data directly (PTTL, GET).
///
/// A missing redis-server is an error from Start(), for the test to fail on, never a
/// skip. Not thread-safe apart from Command(), which opens its own connection per call.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace kpm::testing {

/// One RESP reply.
struct RespReply {
  enum class Type { kStatus, kError, kInteger, kString, kNil, kArray };
  Type type = Type::kNil;
  std::string text;  ///< status, error or bulk string
  int64_t integer = 0;
  std::vector<RespReply> elements;
};

class RedisServer {
 public:
  /// `password` non-empty: the server runs with `--requirepass` and url() carries it.
  explicit RedisServer(std::string password = "");
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  /// Stops the server and removes its directory.
  ~RedisServer();

  /// Starts the server and waits until it answers (INFO naming its process id, so a
  /// stranger that took the port does not count; bounded: 10 s). The first start
  /// picks a free port (trying again with another one if the server cannot bind it);
  /// later starts, after Stop(), reuse that port. A missing redis-server (looked up as
  /// $KPM_REDIS_SERVER, /usr/bin/redis-server, then $PATH) is kNotFound; a server that
  /// exits or never answers is kIo with the tail of its log.
  Status Start();
  /// SIGTERM and wait (SIGKILL after 10 s). Idempotent. The data is gone (no persistence).
  void Stop();
  bool running() const { return pid_ > 0; }

  int port() const { return port_; }
  /// "redis://127.0.0.1:PORT/0", or "redis://:PASSWORD@127.0.0.1:PORT/0" with a password.
  std::string url() const;

  /// Sends one command (AUTH first when there is a password) on a fresh connection and
  /// returns the reply; kIo when the server cannot be reached or answers garbage.
  Result<RespReply> Command(const std::vector<std::string>& args) const;

 private:
  Status SpawnAndWait();
  std::string LogTail() const;

  std::string password_;
  std::string dir_;
  std::string executable_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace kpm::testing
