#pragma once
/// Clock: the key pool's only source of time. Abstract so tests can use a FakeClock
/// that moves only when told (no sleeps in the keypool suite).

#include <cstdint>

#include "common/cancel.h"

namespace kpm::keypool {

class Clock {
 public:
  virtual ~Clock() = default;
  /// Wall-clock time in Unix milliseconds (rate-limit resets are wall-clock times).
  virtual int64_t NowMs() const = 0;
  /// Waits `ms` or until `cancel` fires. Returns false if cancelled.
  virtual bool SleepFor(int64_t ms, const CancelToken* cancel) = 0;
};

/// The real clock (std::chrono::system_clock; sleeps on the token's condition variable).
class SystemClock : public Clock {
 public:
  int64_t NowMs() const override;
  bool SleepFor(int64_t ms, const CancelToken* cancel) override;
};

}  // namespace kpm::keypool
