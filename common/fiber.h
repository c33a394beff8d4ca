#pragma once
/// Fibers on one loop thread: how many calls are in flight at once without a thread each.
///
/// A Loop runs on one thread of its own. Every tool call that may talk to an upstream runs
/// on a fiber of that loop: a small stack of its own on which the call's code runs as
/// ordinary sequential code (the failover loop, an adapter, a health check). Where that
/// code would block — an HTTP transfer, a backoff, a wait for a cooling key — it parks
/// instead, and the loop runs another fiber until the I/O or the timer it waits for is
/// ready. The loop sleeps in a Poller: the libcurl multi handle in the server
/// (providers/curl_http_client.cc), a plain condition variable without one. So the number
/// of threads does not grow with the calls in flight, and everything a fiber touches runs
/// on one thread, one fiber at a time, switching only where it parks.
///
/// The rules a fiber follows: never hold a lock across a call that can park (an HTTP
/// Send, SleepFor, CancelToken::WaitFor, ForEach); never block the thread (use SleepFor,
/// not std::this_thread::sleep_for). Code not on a fiber may call all the same functions:
/// they then block the calling thread as usual.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace kpm {
class CancelToken;
}

namespace kpm::fiber {

/// What a Loop sleeps in between its turns.
class Poller {
 public:
  virtual ~Poller() = default;
  /// Waits at most `timeout_ms` (0: do not wait) for I/O or Wake(), then does what is
  /// ready (and may Resume fibers). Called on the loop thread only.
  virtual void Poll(int64_t timeout_ms) = 0;
  /// Makes a Poll in progress return soon. Thread-safe.
  virtual void Wake() = 0;
};

class Loop {
 public:
  /// One fiber's stack (virtual; only the pages a fiber touches become resident).
  static constexpr size_t kStackBytes = 512 * 1024;

  Loop();
  /// Stop(), then joins the thread.
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  /// The Poller the loop sleeps in (it must outlive the loop's thread); nullptr: the
  /// built-in condition variable. Before the first Spawn.
  void SetPoller(Poller* poller);

  /// Runs `fn` on a new fiber of this loop; starts the loop's thread on first use.
  /// Thread-safe. An exception escaping `fn` is logged nowhere and swallowed: callers
  /// catch their own.
  void Spawn(std::function<void()> fn);

  /// Runs `fn` on a fiber of this loop and waits for it; from a fiber of this loop it
  /// simply calls `fn`. For code that may be on no fiber (the CLI, a test thread).
  void Run(const std::function<void()>& fn);

  /// Runs `fn` on the loop thread itself (not on a fiber: it must not park). Thread-safe.
  void Post(std::function<void()> fn);

  /// Waits for every fiber to end, then stops the thread. Idempotent.
  void Stop();

  /// Fibers alive now (running, runnable or parked).
  size_t fibers() const;

  /// The loop whose fiber is running on this thread; nullptr when not on a fiber.
  static Loop* Current();

  // --- On a fiber of this loop only -------------------------------------------------
  /// An opaque handle of the running fiber, for Resume.
  using FiberId = void*;
  FiberId Self() const;
  /// Parks the running fiber until Resume(Self()) is called (on the loop thread).
  void Park();
  /// Makes a parked fiber runnable again. Loop thread only (a Poller, a Post, a fiber).
  void Resume(FiberId fiber);

  struct Impl;  ///< fiber.cc's own

 private:
  std::unique_ptr<Impl> impl_;
};

/// Waits `ms` or until `cancel` (may be null) is cancelled; false if cancelled. On a fiber
/// it parks on a timer of the loop; elsewhere it blocks the thread.
bool SleepFor(int64_t ms, const CancelToken* cancel);

/// Runs fn(0) … fn(count - 1), at most `parallel` at once, and returns when all have.
/// On a fiber: each runs on a fiber of the same loop. Elsewhere: on at most `parallel`
/// threads. `fn` must not throw.
void ForEach(size_t count, size_t parallel, const std::function<void(size_t)>& fn);

}  // namespace kpm::fiber
