#pragma once
/// RedisBackend: the StateBackend kept in a Redis server, shared by every process that
/// points at it (SPEC §2 `state: {type: redis, url, prefix}`).
///
/// Layout under a prefix P: each entry is the string `P:key:<id>`, the secret is
/// `P:secret` (64 hex characters), and every write is announced on the channel
/// `P:changes` (the message is the id). Every SET carries `PX kEntryTtlMs`, so an entry
/// nobody writes any more goes away by itself.
///
/// Two connections, both synchronous hiredis with short timeouts (an unreachable or
/// silent server is an error within them, never a hang):
///   - the command connection, used by the caller's thread. After any I/O error it is
///     freed and the call fails (kIo); the next call's Open() connects again.
///   - the subscriber connection, owned by a background thread started by the first
///     Open(). It SUBSCRIBEs to `P:changes` and bumps a counter on every message
///     (this object's own writes included), so Version() is a read of an atomic. When
///     that connection breaks the thread reconnects with a backoff (100 ms doubling to
///     1 s) and bumps the counter once it is subscribed again; while it is down
///     Version() is an error.
///
/// Not thread-safe (StateBackend): one caller thread at a time; the subscriber thread
/// shares only atomics with it. The password is never logged, shown or put in an error.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"
#include "state/state_backend.h"
#include "state/store_spec.h"

struct redisContext;
struct redisReply;

namespace kpm::state {

/// One Redis connection's reply, freed with it.
struct RedisReplyDeleter {
  void operator()(redisReply* reply) const;
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

class RedisBackend : public StateBackend {
 public:
  explicit RedisBackend(RedisOptions options);
  RedisBackend(const RedisBackend&) = delete;
  RedisBackend& operator=(const RedisBackend&) = delete;
  /// Stops and joins the subscriber thread (it wakes at once), frees both connections.
  ~RedisBackend() override;

  /// "redis HOST:PORT/DB prefix P".
  std::string Describe() const override;
  /// Connects the command connection (AUTH, SELECT) when it is not connected. The first
  /// successful Open() also starts the subscriber and waits (bounded by the timeouts)
  /// for its first subscription, so Version() works right after it.
  Status Open() override;
  /// The change counter, no round trip. kIo while the subscriber is disconnected or
  /// before the first Open().
  Result<uint64_t> Version() override;
  Result<std::optional<std::string>> Read(const std::string& id) override;
  /// WATCH, GET, fn, MULTI, SET PX, PUBLISH, EXEC; again after a random pause (up to
  /// 1..10 ms, growing) when EXEC says another client wrote first (at most
  /// kMaxUpdateAttempts times, then kIo).
  Result<std::string> Update(const std::string& id,
                             const std::function<std::string(const std::optional<std::string>&)>& fn) override;
  /// SCAN MATCH `P:key:*`, then MGET; sorted by id.
  Result<std::vector<Entry>> List() override;
  Result<size_t> Remove(const std::vector<std::string>& ids) override;
  /// The 32 bytes (raw, decoded from the stored hex) of `P:secret`, created with SET NX
  /// by the first backend that asks (or put back, after a restart that lost it, with the
  /// value this backend read before). Read from the server on every call.
  Result<std::string> Secret() override;

  static constexpr int kMaxUpdateAttempts = 50;

 private:
  /// Commands sent in one write on the command connection (Open() first), their replies
  /// in order, error replies included. An I/O error closes the connection.
  Result<std::vector<RedisReplyPtr>> Pipeline(const std::vector<std::vector<std::string_view>>& commands);
  /// One command; a Redis error reply is returned as kIo naming the command.
  Result<RedisReplyPtr> Command(const std::vector<std::string_view>& args);
  /// The command connection's failure as an Error, after which it is closed.
  Error IoError();
  Error ReplyError(std::string_view command, const redisReply& reply) const;
  void CloseCommand();
  void StartSubscriber();
  void StopSubscriber();
  void SubscriberLoop();
  /// Ends the first Open()'s wait: the first subscription is up, or failed.
  void FirstAttemptDone();
  /// One subscriber session: connect, subscribe, read until broken or stopping. True
  /// when it got subscribed; `reason` says why it ended.
  bool SubscriberSession(std::string* reason);
  /// Counts change messages on the subscribed `c` until it breaks or stop_; says why.
  std::string ReadChanges(redisContext* c);
  /// Sleeps up to `ms` unless woken (shutdown or a kick from Open()).
  void SubscriberWait(int ms);
  void Wake();

  std::string KeyName(std::string_view id) const;

  const RedisOptions options_;
  const std::string where_;  ///< "redis HOST:PORT/DB", the start of every error message
  redisContext* command_ = nullptr;
  std::optional<std::string> secret_;      ///< decoded, once read
  std::optional<std::string> secret_hex_;  ///< as stored
  std::minstd_rand jitter_;                ///< pauses between lost races (caller's thread only)

  std::atomic<uint64_t> version_{1};
  std::atomic<bool> subscribed_{false};
  std::atomic<bool> stop_{false};
  std::atomic<bool> kick_{false};
  int wake_fd_ = -1;  ///< eventfd: wakes the subscriber's poll
  std::thread subscriber_;
  std::mutex first_mu_;
  std::condition_variable first_cv_;
  bool first_attempt_done_ = false;  ///< guarded by first_mu_
};

/// A RedisBackend for `options` (nothing connects until Open()).
std::unique_ptr<StateBackend> MakeRedisBackend(const RedisOptions& options);

}  // namespace kpm::state
