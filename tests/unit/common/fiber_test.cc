#include "common/fiber.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/cancel.h"

namespace kpm::fiber {
namespace {

using namespace std::chrono_literals;

/// Threads of this process (Linux).
int ThreadCount() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

/// Waits (on this thread) until pred() or 10 s.
template <class Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 2000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

TEST_CASE("500 sleeping fibers run on one thread and all finish", "[unit][common][fiber]") {
  Loop loop;
  std::atomic<int> finished{0};
  std::mutex mu;
  std::set<std::thread::id> threads;
  loop.Run([] {});  // the loop's thread exists from here (and any the runtime adds for it)
  const int before = ThreadCount();
  for (int i = 0; i < 500; ++i) {
    loop.Spawn([&] {
      {
        std::lock_guard<std::mutex> lock(mu);
        threads.insert(std::this_thread::get_id());
      }
      if (SleepFor(200, nullptr)) ++finished;  // no CHECK off the test's thread: Catch is not thread-safe
    });
  }
  CHECK(ThreadCount() == before);  // 500 calls in flight, not one thread more
  REQUIRE(Eventually([&] { return finished == 500; }));
  CHECK(threads.size() == 1);
  CHECK(threads.count(std::this_thread::get_id()) == 0);
  CHECK(Eventually([&] { return loop.fibers() == 0; }));
}

TEST_CASE("A cancelled token wakes a sleeping fiber early", "[unit][common][fiber]") {
  Loop loop;
  CancelToken token;
  std::atomic<int> result{-1};
  loop.Spawn([&] { result = SleepFor(60000, &token) ? 1 : 0; });
  REQUIRE(Eventually([&] { return loop.fibers() == 1; }));
  token.Cancel();
  REQUIRE(Eventually([&] { return result != -1; }));
  CHECK(result == 0);
}

TEST_CASE("CancelToken::WaitFor on a fiber parks the fiber, not the thread", "[unit][common][fiber]") {
  Loop loop;
  CancelToken token;
  std::atomic<bool> other_ran{false};
  std::atomic<int> waited{-1};
  loop.Spawn([&] { waited = token.WaitFor(30s) ? 1 : 0; });
  loop.Spawn([&] { other_ran = true; });  // would never run if the first blocked the thread
  REQUIRE(Eventually([&] { return other_ran.load(); }));
  token.Cancel();
  REQUIRE(Eventually([&] { return waited != -1; }));
  CHECK(waited == 1);
}

TEST_CASE("ForEach runs every index with at most the given number at once", "[unit][common][fiber]") {
  auto check = [](bool on_fiber) {
    std::atomic<int> running{0};
    std::atomic<int> peak{0};
    std::atomic<int> done{0};
    std::vector<int> seen(100, 0);
    auto body = [&](size_t i) {
      const int now = ++running;
      int p = peak.load();
      while (now > p && !peak.compare_exchange_weak(p, now)) {
      }
      SleepFor(5, nullptr);
      ++seen[i];
      --running;
      ++done;
    };
    if (on_fiber) {
      Loop loop;
      loop.Run([&] { ForEach(seen.size(), 8, body); });
    } else {
      ForEach(seen.size(), 8, body);
    }
    CHECK(done == 100);
    CHECK(peak <= 8);
    CHECK(peak >= 2);
    for (int s : seen) CHECK(s == 1);
  };
  SECTION("on fibers of a loop") { check(true); }
  SECTION("on threads") { check(false); }
}

TEST_CASE("Run from a plain thread waits for the fiber and an exception does not escape it",
          "[unit][common][fiber]") {
  Loop loop;
  int value = 0;
  loop.Run([&] {
    SleepFor(10, nullptr);
    value = 42;
  });
  CHECK(value == 42);
  loop.Spawn([] { throw std::runtime_error("boom"); });
  loop.Run([&] { value = 7; });
  CHECK(value == 7);
  CHECK(Eventually([&] { return loop.fibers() == 0; }));
}

TEST_CASE("Stop waits for the fibers in flight", "[unit][common][fiber]") {
  std::atomic<bool> finished{false};
  {
    Loop loop;
    loop.Spawn([&] {
      SleepFor(100, nullptr);
      finished = true;
    });
    REQUIRE(Eventually([&] { return loop.fibers() == 1; }));
  }  // ~Loop: Stop
  CHECK(finished);
}

}  // namespace
}  // namespace kpm::fiber
