#include "keypool/clock.h"

#include <chrono>
#include <thread>

namespace kpm::keypool {

int64_t SystemClock::NowMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool SystemClock::SleepFor(int64_t ms, const CancelToken* cancel) {
  if (ms <= 0) return !(cancel && cancel->cancelled());
  if (cancel == nullptr) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return true;
  }
  return !cancel->WaitFor(std::chrono::milliseconds(ms));
}

}  // namespace kpm::keypool
