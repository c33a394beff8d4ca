#include "keypool/key_pool.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/support/fake_clock.h"
#include "tests/unit/keypool/pool_test_util.h"

namespace kpm::keypool {
namespace {

using kpm::testing::FakeClock;
using kpm::testing::Keys;
using kpm::testing::OpenAiSecrets;
using kpm::testing::Out;

AttemptOutcome RateLimited(std::optional<int64_t> retry_at = std::nullopt) {
  AttemptOutcome out = Out(Outcome::kRateLimited, 429, "Rate limit reached");
  out.limits.retry_at_ms = retry_at;
  return out;
}

/// Leases `index` (it must be the first usable key) and reports `out` for it.
KeySnapshot Hit(KeyPool& pool, size_t index, const AttemptOutcome& out) {
  std::vector<bool> exclude(pool.size(), true);
  exclude[index] = false;
  auto lease = pool.Acquire(0, exclude);
  REQUIRE(lease);
  REQUIRE(lease->index == index);
  return pool.Report(*lease, out);
}

TEST_CASE("A pool without keys has one keyless entry", "[unit][keypool]") {
  FakeClock clock;
  KeyPool pool("local", {}, FailoverPolicy{}, clock);
  REQUIRE(pool.size() == 1);
  auto lease = pool.Acquire(0);
  REQUIRE(lease);
  CHECK(lease->secret.empty());
  CHECK(lease->Display() == "local (no key)");
  pool.Report(*lease, Out(Outcome::kOk, 200));
  CHECK(pool.Snapshot().active_key == "local (no key)");
}

TEST_CASE("Cooldowns only grow: a shorter hint never shortens one", "[unit][keypool]") {
  FakeClock clock;
  KeyPool pool("openai", Keys(OpenAiSecrets(1)), FailoverPolicy{}, clock);
  const int64_t t0 = clock.NowMs();
  CHECK(Hit(pool, 0, RateLimited(t0 + 20000)).ready_in_ms == 20000);
  // A lease taken before the cooldown answers later with a shorter hint.
  pool.ApplyHealthCheck(0, RateLimited(t0 + 5000), false, clock.NowMs());
  CHECK(pool.SnapshotKey(0).ready_in_ms == 20000);
  pool.ApplyHealthCheck(0, RateLimited(t0 + 30000), false, clock.NowMs());
  CHECK(pool.SnapshotKey(0).ready_in_ms == 30000);
}

TEST_CASE("A 429 without a hint cools 1s, doubling per consecutive 429 up to the cap, reset by a success",
          "[unit][keypool]") {
  FakeClock clock;
  FailoverPolicy policy;
  KeyPool pool("openai", Keys(OpenAiSecrets(1)), policy, clock);
  const std::vector<int64_t> want = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
  for (int64_t w : want) {
    KeySnapshot after = Hit(pool, 0, RateLimited());  // the half-open trial fails again
    CHECK(after.state == KeyState::kCoolingDown);
    CHECK(after.ready_in_ms == w);
    clock.Advance(w);
  }
  CHECK(Hit(pool, 0, Out(Outcome::kOk, 200)).state == KeyState::kReady);
  CHECK(Hit(pool, 0, RateLimited()).ready_in_ms == 1000);
}

TEST_CASE("Concurrent 429s on a key already cooling do not escalate its cooldown", "[unit][keypool]") {
  FakeClock clock;
  KeyPool pool("openai", Keys(OpenAiSecrets(1)), FailoverPolicy{}, clock);
  auto a = pool.Acquire(0);
  auto b = pool.Acquire(0);
  REQUIRE(a);
  REQUIRE(b);
  pool.Report(*a, RateLimited());
  CHECK(pool.Report(*b, RateLimited()).ready_in_ms == 1000);
}

TEST_CASE("rate_limited and quota_exhausted cool every key of the same account", "[unit][keypool]") {
  FakeClock clock;
  auto keys = Keys(OpenAiSecrets(4));
  keys[0].account = "org-a";
  keys[1].account = "org-a";
  keys[2].account = "org-b";  // another account
  // keys[3] has none: its own account
  KeyPool pool("openai", keys, FailoverPolicy{}, clock);

  SECTION("rate_limited") {
    Hit(pool, 0, RateLimited(clock.NowMs() + 20000));
    auto snap = pool.Snapshot();
    CHECK(snap.keys[1].state == KeyState::kCoolingDown);
    CHECK(snap.keys[1].ready_in_ms == 20000);
    CHECK(snap.keys[1].reason.find("via openai#1") != std::string::npos);
    CHECK(snap.keys[2].state == KeyState::kReady);
    CHECK(snap.keys[3].state == KeyState::kReady);
    CHECK(snap.active_key == "openai#3 " + Fingerprint(OpenAiSecrets(4)[2]));
  }
  SECTION("quota_exhausted") {
    Hit(pool, 0, Out(Outcome::kQuotaExhausted, 429, "You exceeded your current quota"));
    auto snap = pool.Snapshot();
    CHECK(snap.keys[0].reason == "quota exhausted");
    CHECK(snap.keys[1].ready_in_ms == 3600000);
    CHECK(snap.keys[2].state == KeyState::kReady);
  }
  SECTION("auth_error stays with the key") {
    Hit(pool, 0, Out(Outcome::kAuthError, 401));
    CHECK(pool.Snapshot().keys[1].state == KeyState::kReady);
  }
}

TEST_CASE("A remaining: 0 answer with a future reset cools the key until the reset", "[unit][keypool]") {
  FakeClock clock;
  KeyPool pool("openai", Keys(OpenAiSecrets(2)), FailoverPolicy{}, clock);
  AttemptOutcome ok = Out(Outcome::kOk, 200);
  ok.limits.requests_remaining = 0;
  ok.limits.requests_reset_at_ms = clock.NowMs() + 7000;
  KeySnapshot after = Hit(pool, 0, ok);
  CHECK(after.state == KeyState::kCoolingDown);
  CHECK(after.ready_in_ms == 7000);
  CHECK(pool.Acquire(0)->index == 1);  // no round trip spent on key 1

  SECTION("a reset already past changes nothing") {
    AttemptOutcome stale = Out(Outcome::kOk, 200);
    stale.limits.tokens_remaining = 0;
    stale.limits.tokens_reset_at_ms = clock.NowMs() - 1;
    CHECK(Hit(pool, 1, stale).state == KeyState::kReady);
  }
}

TEST_CASE("After a cooldown exactly one caller gets the key as a trial", "[unit][keypool]") {
  FakeClock clock;
  KeyPool pool("openai", Keys(OpenAiSecrets(2)), FailoverPolicy{}, clock);
  Hit(pool, 0, RateLimited());
  clock.Advance(1000);

  SECTION("under concurrency (threads)") {
    constexpr int kThreads = 8;
    std::atomic<int> trials{0};
    std::atomic<int> others{0};
    std::vector<std::thread> threads;
    std::vector<std::optional<KeyLease>> leases(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        leases[t] = pool.Acquire(0);
        if (leases[t] && leases[t]->index == 0 && leases[t]->trial) {
          ++trials;  // (Catch2 assertions are not thread-safe: count, check after join)
        } else if (leases[t]) {
          ++others;
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(trials == 1);
    CHECK(others == kThreads - 1);
    for (auto& l : leases) pool.Report(*l, Out(Outcome::kOk, 200));
    CHECK(pool.SnapshotKey(0).state == KeyState::kReady);
    CHECK(pool.Acquire(0)->trial == false);
  }
  SECTION("the snapshot shows the trial while it is out") {
    auto trial = pool.Acquire(0);
    REQUIRE(trial->trial);
    CHECK(pool.SnapshotKey(0).state == KeyState::kCoolingDown);
    CHECK(pool.Snapshot().active_key->rfind("openai#2", 0) == 0);
    SECTION("a failed trial starts the next, longer cooldown") {
      CHECK(pool.Report(*trial, RateLimited()).ready_in_ms == 2000);
    }
    SECTION("a trial ended by a cause that is not the key's leaves it half-open") {
      pool.Report(*trial, Out(Outcome::kBadRequest, 400));
      auto next = pool.Acquire(0);
      REQUIRE(next);
      CHECK(next->index == 0);
      CHECK(next->trial);
    }
  }
}

TEST_CASE("maxInFlight caps concurrent leases per key", "[unit][keypool]") {
  FakeClock clock;
  FailoverPolicy policy;
  policy.max_in_flight = 2;
  KeyPool pool("openai", Keys(OpenAiSecrets(2)), policy, clock);
  auto a = pool.Acquire(0);
  auto b = pool.Acquire(0);
  auto c = pool.Acquire(0);
  CHECK(a->index == 0);
  CHECK(b->index == 0);
  CHECK(c->index == 1);
  pool.Report(*a, Out(Outcome::kOk, 200));
  CHECK(pool.Acquire(0)->index == 0);
}

TEST_CASE("Sequential starts at the first usable key; round-robin rotates the start", "[unit][keypool]") {
  FakeClock clock;
  SECTION("sequential") {
    KeyPool pool("openai", Keys(OpenAiSecrets(3)), FailoverPolicy{}, clock);
    for (int call = 0; call < 4; ++call) {
      auto lease = pool.Acquire(pool.NextStart());
      CHECK(lease->index == 0);
      pool.Report(*lease, Out(Outcome::kOk, 200));
    }
    Hit(pool, 0, Out(Outcome::kAuthError, 401));
    CHECK(pool.Acquire(pool.NextStart())->index == 1);
  }
  SECTION("round-robin") {
    FailoverPolicy policy;
    policy.strategy = Strategy::kRoundRobin;
    KeyPool pool("openai", Keys(OpenAiSecrets(3)), policy, clock);
    std::vector<size_t> order;
    for (int call = 0; call < 6; ++call) {
      CHECK(pool.Snapshot().active_key->rfind("openai#" + std::to_string(call % 3 + 1), 0) == 0);
      auto lease = pool.Acquire(pool.NextStart());
      order.push_back(lease->index);
      pool.Report(*lease, Out(Outcome::kOk, 200));
    }
    CHECK(order == std::vector<size_t>{0, 1, 2, 0, 1, 2});
  }
}

TEST_CASE("Health checks revive keys only where they prove something", "[unit][keypool]") {
  FakeClock clock;
  auto keys = Keys(OpenAiSecrets(3));
  keys[2].disabled_reason = "environment variable OR_KEY_2 is not set";
  keys[2].secret.clear();
  KeyPool pool("openai", keys, FailoverPolicy{}, clock);

  SECTION("a pass revives an auth_error-disabled key") {
    Hit(pool, 0, Out(Outcome::kAuthError, 401, "Incorrect API key"));
    CHECK(pool.SnapshotKey(0).state == KeyState::kDisabled);
    pool.ApplyHealthCheck(0, Out(Outcome::kOk, 200), false, clock.NowMs());
    CHECK(pool.SnapshotKey(0).state == KeyState::kReady);
  }
  SECTION("a pass revives a quota-cooled key only with known credit") {
    Hit(pool, 0, Out(Outcome::kQuotaExhausted, 402));
    pool.ApplyHealthCheck(0, Out(Outcome::kOk, 200), false, clock.NowMs());
    CHECK(pool.SnapshotKey(0).state == KeyState::kCoolingDown);
    pool.ApplyHealthCheck(0, Out(Outcome::kOk, 200), true, clock.NowMs());
    CHECK(pool.SnapshotKey(0).state == KeyState::kReady);
  }
  SECTION("a pass does not end a rate-limit cooldown") {
    Hit(pool, 0, RateLimited());
    pool.ApplyHealthCheck(0, Out(Outcome::kOk, 200), true, clock.NowMs());
    CHECK(pool.SnapshotKey(0).state == KeyState::kCoolingDown);
  }
  SECTION("a failing check applies its class, but network trouble changes nothing") {
    pool.ApplyHealthCheck(0, Out(Outcome::kNetworkError, 0, "connection refused"), false, clock.NowMs());
    pool.ApplyHealthCheck(0, Out(Outcome::kTimeout), false, clock.NowMs());
    pool.ApplyHealthCheck(0, Out(Outcome::kServerError, 503), false, clock.NowMs());
    CHECK(pool.SnapshotKey(0).state == KeyState::kReady);
    pool.ApplyHealthCheck(1, Out(Outcome::kAuthError, 401, "bad key"), false, clock.NowMs());
    CHECK(pool.SnapshotKey(1).state == KeyState::kDisabled);
    CHECK(pool.SnapshotKey(1).reason == "auth error (401): bad key");
    CHECK(pool.SnapshotKey(1).requests == 0);  // checks are not completions
  }
  SECTION("a key disabled by configuration is never changed") {
    pool.ApplyHealthCheck(2, Out(Outcome::kOk, 200), true, clock.NowMs());
    CHECK(pool.SnapshotKey(2).state == KeyState::kDisabled);
    CHECK(pool.SnapshotKey(2).reason == "environment variable OR_KEY_2 is not set");
    CHECK(pool.LeaseForCheck(2).secret.empty());
  }
}

TEST_CASE("Counters and last figures record every attempt, scrubbed", "[unit][keypool]") {
  FakeClock clock;
  auto secrets = OpenAiSecrets(1);
  KeyPool pool("openai", Keys(secrets), FailoverPolicy{}, clock);
  Hit(pool, 0, Out(Outcome::kOk, 200));
  Hit(pool, 0, Out(Outcome::kBadRequest, 400, "bad: " + secrets[0]));
  Hit(pool, 0, Out(Outcome::kCancelled));
  KeySnapshot k = pool.SnapshotKey(0);
  CHECK(k.requests == 3);
  CHECK(k.failures == 1);
  CHECK(k.last_status == 400);
  CHECK(k.last_error == "bad_request: bad: [redacted]");
  CHECK(k.last_used_ms == clock.NowMs());
  CHECK(k.state == KeyState::kReady);
  CHECK(pool.Scrub("x" + secrets[0]) == "x[redacted]");
}

TEST_CASE("State lives in the store: two pools over one store see each other's changes", "[unit][keypool]") {
  FakeClock clock;
  auto store = std::make_shared<InMemoryKeyStateStore>();
  KeyPool a("openai", Keys(OpenAiSecrets(2)), FailoverPolicy{}, clock, store);
  KeyPool b("openai", Keys(OpenAiSecrets(2)), FailoverPolicy{}, clock, store);
  Hit(a, 0, Out(Outcome::kAuthError, 401));
  CHECK(b.SnapshotKey(0).state == KeyState::kDisabled);
  CHECK(b.Acquire(0)->index == 1);
}

TEST_CASE("Durations read as a person says them", "[unit][keypool]") {
  CHECK(FormatDurationMs(0) == "0s");
  CHECK(FormatDurationMs(1) == "1s");
  CHECK(FormatDurationMs(41000) == "41s");
  CHECK(FormatDurationMs(125000) == "2m 5s");
  CHECK(FormatDurationMs(3600000) == "1h 0m");
}

}  // namespace
}  // namespace kpm::keypool
