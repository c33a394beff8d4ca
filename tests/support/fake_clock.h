#pragma once
/// FakeClock: a Clock that moves only when told (ninja's VFS tick). SleepFor advances
/// time at once unless the token is already cancelled, so the keypool suite never
/// sleeps. Thread-safe.

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>

#include "keypool/clock.h"

namespace kpm::testing {

class FakeClock : public keypool::Clock {
 public:
  /// 2023-11-14T22:13:20Z: a realistic wall clock, so HTTP dates resolve sensibly.
  static constexpr int64_t kStartMs = 1700000000000;

  explicit FakeClock(int64_t start_ms = kStartMs) : now_(start_ms) {}

  int64_t NowMs() const override { return now_.load(); }

  bool SleepFor(int64_t ms, const CancelToken* cancel) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (on_sleep_) on_sleep_(ms);
    }
    if (cancel && cancel->cancelled()) return false;
    if (ms > 0) {
      now_ += ms;
      slept_ms_ += ms;
    }
    sleeps_++;
    return true;
  }

  void Advance(int64_t ms) { now_ += ms; }
  int64_t slept_ms() const { return slept_ms_.load(); }
  int sleeps() const { return sleeps_.load(); }
  /// Called at the start of every SleepFor (e.g. to cancel a call mid-wait).
  void OnSleep(std::function<void(int64_t)> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    on_sleep_ = std::move(hook);
  }

 private:
  std::atomic<int64_t> now_;
  std::atomic<int64_t> slept_ms_{0};
  std::atomic<int> sleeps_{0};
  std::mutex mu_;
  std::function<void(int64_t)> on_sleep_;
};

}  // namespace kpm::testing
