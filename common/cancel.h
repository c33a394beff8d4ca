#pragma once
/// CancelToken: set once by whoever owns a call (notifications/cancelled, shutdown),
/// read by everything the call does (failover loop, waits, the HTTP transfer).
/// Thread-safe; cheap to poll.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "common/fiber.h"

namespace kpm {

class CancelToken {
 public:
  void Cancel() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
  }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  /// Sleeps up to `d`, waking early on Cancel(). Returns true if cancelled. On a fiber
  /// it parks the fiber (fiber::SleepFor) instead of blocking the loop's thread.
  template <typename Rep, typename Period>
  bool WaitFor(std::chrono::duration<Rep, Period> d) const {
    if (fiber::Loop::Current() != nullptr) {
      return !fiber::SleepFor(std::chrono::duration_cast<std::chrono::milliseconds>(d).count(), this);
    }
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, d, [this] { return cancelled(); });
  }

 private:
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
};

}  // namespace kpm
