#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "keypool/failover.h"
#include "tests/support/fake_clock.h"
#include "tests/unit/keypool/pool_test_util.h"

namespace kpm::keypool {
namespace {

using kpm::testing::FakeClock;
using kpm::testing::Keys;
using kpm::testing::OpenAiSecrets;
using kpm::testing::Out;

TEST_CASE("Many threads sharing one pool keep its invariants", "[unit][keypool][stress]") {
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 150;
  constexpr size_t kKeys = 4;
  constexpr int kMaxInFlight = 2;

  auto level = spdlog::default_logger()->level();
  spdlog::default_logger()->set_level(spdlog::level::warn);  // thousands of switch lines otherwise

  FakeClock clock;
  FailoverPolicy policy;
  policy.strategy = Strategy::kRoundRobin;
  policy.max_in_flight = kMaxInFlight;
  policy.max_wait_ms = 2000;
  auto keys = Keys(OpenAiSecrets(kKeys));
  keys[0].account = keys[1].account = "org-a";
  KeyPool pool("openai", keys, policy, clock);

  std::array<std::atomic<int>, kKeys> in_flight{};
  std::array<std::atomic<int>, kKeys> trials_in_flight{};
  std::atomic<int> max_seen{0};
  std::atomic<int> max_trials_seen{0};
  std::atomic<uint64_t> attempts_total{0};
  std::atomic<int> ok_calls{0};
  std::atomic<int> bad_results{0};

  auto worker = [&](int seed) {
    std::mt19937 rng(seed);
    AttemptFn fn = [&](const KeyLease& key, int64_t) {
      int now_in = ++in_flight[key.index];
      int cur = max_seen.load();
      while (now_in > cur && !max_seen.compare_exchange_weak(cur, now_in)) {}
      if (key.trial) {
        int t = ++trials_in_flight[key.index];
        int ct = max_trials_seen.load();
        while (t > ct && !max_trials_seen.compare_exchange_weak(ct, t)) {}
      }
      std::this_thread::yield();  // let others overlap with this "request"
      static constexpr Outcome kMix[] = {Outcome::kOk,          Outcome::kOk,           Outcome::kOk,
                                         Outcome::kRateLimited, Outcome::kServerError,  Outcome::kNetworkError,
                                         Outcome::kTimeout,     Outcome::kQuotaExhausted, Outcome::kAuthError,
                                         Outcome::kBadRequest,  Outcome::kContextTooLong};
      Outcome o = kMix[std::uniform_int_distribution<size_t>(0, std::size(kMix) - 1)(rng)];
      // Auth and quota are rare, or the pool would be dead in the first second.
      if ((o == Outcome::kAuthError || o == Outcome::kQuotaExhausted) && rng() % 20 != 0) o = Outcome::kOk;
      clock.Advance(std::uniform_int_distribution<int>(0, 40)(rng));
      if (key.trial) --trials_in_flight[key.index];
      --in_flight[key.index];
      return Out(o, o == Outcome::kOk ? 200 : 500);
    };
    for (int i = 0; i < kCallsPerThread; ++i) {
      CallResult r = RunCall({{&pool, fn}}, CallOptions{}, clock);
      attempts_total += r.attempts.size();
      if (r.outcome == Outcome::kOk) {
        ++ok_calls;
        if (!r.key || r.attempts.empty() || r.attempts.back().outcome != Outcome::kOk) ++bad_results;
      } else if (r.message.empty()) {
        ++bad_results;
      }
      if (pool.Snapshot().keys.size() != kKeys) ++bad_results;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, 1000 + t);
  for (auto& th : threads) th.join();
  spdlog::default_logger()->set_level(level);

  CHECK(bad_results == 0);
  CHECK(max_seen <= kMaxInFlight);
  CHECK(max_trials_seen <= 1);
  CHECK(ok_calls > 0);
  uint64_t requests = 0;
  uint64_t failures = 0;
  for (const auto& k : pool.Snapshot().keys) {
    CAPTURE(k.label);
    CHECK(k.in_flight == 0);  // every lease came back
    CHECK(k.failures <= k.requests);
    requests += k.requests;
    failures += k.failures;
  }
  // An ok attempt ends its call, so the ok attempts are the ok calls; no cancellations here.
  CHECK(requests - failures == static_cast<uint64_t>(ok_calls.load()));
  CHECK(requests == attempts_total);  // every attempt counted exactly once
}

}  // namespace
}  // namespace kpm::keypool
