#include "keypool/clock.h"

#include <chrono>

#include "common/fiber.h"

namespace kpm::keypool {

int64_t SystemClock::NowMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool SystemClock::SleepFor(int64_t ms, const CancelToken* cancel) {
  if (ms <= 0) return !(cancel && cancel->cancelled());
  return fiber::SleepFor(ms, cancel);  // parks a fiber; blocks a plain thread
}

}  // namespace kpm::keypool
