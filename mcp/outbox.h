#pragma once
/// Outbox: the one writer of a Transport. Whoever produces a message never waits for the
/// client: Send() queues a message that must arrive (a reply, a log message) and Offer()
/// one that a later one supersedes (progress), replacing an older queued one with the
/// same key, or dropping it when the queue already holds kMaxDroppableBytes of those. One
/// thread writes everything in the order it was queued, so a slow or stopped client
/// stalls only that thread, never an upstream stream (a stalled stream would cool a
/// healthy key for a fault that is not its own).

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "mcp/stdio_transport.h"

namespace kpm::mcp {

class Outbox {
 public:
  /// Droppable bytes queued at most; past it new progress is dropped (a reply never is).
  static constexpr std::size_t kMaxDroppableBytes = 1 << 20;

  /// `transport` must outlive the outbox. No thread runs before Start().
  explicit Outbox(Transport& transport) : transport_(transport) {}
  /// Close().
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  /// Starts the writer thread. Idempotent.
  void Start();
  /// Queues `line`; it is written, in order, unless the output is gone. Thread-safe.
  void Send(std::string line);
  /// Queues `line`, unless the last line queued has the same `key` and has not been
  /// written yet (it is replaced) or kMaxDroppableBytes of such lines are queued (`line`
  /// is dropped). Thread-safe.
  void Offer(const std::string& key, std::string line);
  /// Writes what is queued, then stops the writer. Idempotent; Send after it writes
  /// nothing. Lines queued before Start() are written by Close() itself.
  void Close();
  /// True once a write failed (the client's output is closed).
  bool write_failed() const;

 private:
  struct Entry {
    std::string line;
    std::string key;  ///< non-empty: droppable, superseded by the next Offer with this key
  };
  void WriterLoop();
  void WriteOne(const std::string& line);

  Transport& transport_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Entry> queue_;
  std::size_t droppable_bytes_ = 0;
  bool closing_ = false;
  bool closed_ = false;
  bool write_failed_ = false;
  std::thread writer_;
};

}  // namespace kpm::mcp
