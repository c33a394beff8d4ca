// SharedKeyStateStore on a real SQLite file: several stores on one file stand for
// several server processes (each has its own connection, cache and owner), and the
// KeyPool on top of each is the real policy. What must hold across them: a transition
// one sees, the others see; the half-open trial goes to exactly one; no stale write
// shortens a cooldown or revives a key; the hot path does not write; a store that
// breaks degrades to memory and comes back.

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "keypool/key_pool.h"
#include "state/shared_store.h"
#include "state/sqlite_backend.h"
#include "tests/support/fake_clock.h"
#include "tests/support/stdio_driver.h"
#include "tests/unit/keypool/pool_test_util.h"

namespace kpm::testing {
namespace {

using keypool::FailoverPolicy;
using keypool::KeyPool;
using keypool::KeyRecord;
using keypool::KeyState;
using keypool::Outcome;

/// A backend that counts what reaches it (to show the hot path does not write).
class CountingBackend : public state::StateBackend {
 public:
  explicit CountingBackend(std::unique_ptr<state::StateBackend> inner) : inner_(std::move(inner)) {}
  std::string Describe() const override { return inner_->Describe(); }
  Status Open() override { return inner_->Open(); }
  Result<uint64_t> Version() override { return inner_->Version(); }
  Result<std::optional<std::string>> Read(const std::string& id) override {
    ++reads;
    return inner_->Read(id);
  }
  Result<std::string> Update(const std::string& id,
                             const std::function<std::string(const std::optional<std::string>&)>& fn) override {
    ++writes;
    return inner_->Update(id, fn);
  }
  Result<std::vector<state::Entry>> List() override { return inner_->List(); }
  Result<size_t> Remove(const std::vector<std::string>& ids) override { return inner_->Remove(ids); }
  Result<std::string> Secret() override { return inner_->Secret(); }

  std::atomic<int> reads{0};
  std::atomic<int> writes{0};

 private:
  std::unique_ptr<state::StateBackend> inner_;
};

keypool::AttemptOutcome RateLimitedUntil(int64_t until) {
  keypool::AttemptOutcome o = Out(Outcome::kRateLimited, 429);
  o.limits.retry_at_ms = until;
  return o;
}

/// One "process": its own store object on the shared file and its own pool.
struct Process {
  Process(const std::string& path, FakeClock& clock, FailoverPolicy policy = {})
      : store(std::make_shared<state::SharedKeyStateStore>(state::MakeSqliteBackend(path))),
        pool("openai", Keys(OpenAiSecrets(2)), policy, clock, store) {}
  std::shared_ptr<state::SharedKeyStateStore> store;
  KeyPool pool;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_CASE("a cooldown one process sees on a sqlite store is seen by the other", "[integration][state][sqlite]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.path() + "/state.db";
  Process a(path, clock), b(path, clock);

  auto lease = a.pool.Acquire(0);
  REQUIRE(lease);
  REQUIRE(lease->index == 0);
  a.pool.Report(*lease, RateLimitedUntil(clock.NowMs() + 60000));

  CHECK(b.pool.SnapshotKey(0).state == KeyState::kCoolingDown);
  CHECK(b.pool.SnapshotKey(0).ready_in_ms == 60000);
  auto other = b.pool.Acquire(0);
  REQUIRE(other);
  CHECK(other->index == 1);  // b skips key 1 without trying it
  b.pool.Report(*other, Out(Outcome::kOk, 200));

  // A restart (a new store object on the file) keeps it.
  Process c(path, clock);
  CHECK(c.pool.SnapshotKey(0).state == KeyState::kCoolingDown);
}

TEST_CASE("the half-open trial after a cooldown goes to exactly one process", "[integration][state][sqlite]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.path() + "/state.db";
  Process a(path, clock), b(path, clock);
  auto lease = a.pool.Acquire(0);
  REQUIRE(lease);
  a.pool.Report(*lease, RateLimitedUntil(clock.NowMs() + 1000));
  clock.Advance(1001);

  auto trial = a.pool.Acquire(0);
  REQUIRE(trial);
  CHECK(trial->index == 0);
  CHECK(trial->trial);
  auto second = b.pool.Acquire(0);
  REQUIRE(second);
  CHECK(second->index == 1);  // the trial is out in the other process
  CHECK(b.pool.SnapshotKey(0).reason.find("trial request in flight") != std::string::npos);
  b.pool.Report(*second, Out(Outcome::kOk, 200));

  SECTION("a success of the trial makes the key ready for both") {
    a.pool.Report(*trial, Out(Outcome::kOk, 200));
    CHECK(b.pool.SnapshotKey(0).state == KeyState::kReady);
    auto again = b.pool.Acquire(0);
    REQUIRE(again);
    CHECK(again->index == 0);
    CHECK_FALSE(again->trial);
    b.pool.Report(*again, Out(Outcome::kOk, 200));
  }
  SECTION("a process that dies holding the trial does not hold it past its lease") {
    clock.Advance(FailoverPolicy{}.deadline_ms + 5001);
    auto taken = b.pool.Acquire(0);
    REQUIRE(taken);
    CHECK(taken->index == 0);
    CHECK(taken->trial);
    b.pool.Report(*taken, Out(Outcome::kOk, 200));
    a.pool.Report(*trial, Out(Outcome::kOk, 200));
  }
}

TEST_CASE("racing writes on a sqlite store never shorten a cooldown", "[integration][state][sqlite]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.path() + "/state.db";
  Process a(path, clock), b(path, clock);
  const int64_t t0 = clock.NowMs();
  std::atomic<int64_t> longest{0};
  auto hammer = [&](Process& p, int seed) {
    // Each applies cooldowns of varying length, the longer and the shorter interleaved:
    // whatever the order, the stored cooldown must end at the longest one.
    for (int i = 0; i < 200; ++i) {
      int64_t until = t0 + 1000 + ((i * 7919 + seed * 104729) % 50000);
      int64_t prev = longest.load();
      while (until > prev && !longest.compare_exchange_weak(prev, until)) {
      }
      p.pool.ApplyHealthCheck(0, RateLimitedUntil(until), false, clock.NowMs());
    }
  };
  std::thread ta([&] { hammer(a, 1); });
  std::thread tb([&] { hammer(b, 2); });
  ta.join();
  tb.join();
  Process c(path, clock);
  CHECK(c.pool.SnapshotKey(0).ready_in_ms == longest.load() - t0);
  CHECK(a.pool.SnapshotKey(0).ready_in_ms == longest.load() - t0);
  CHECK(b.pool.SnapshotKey(0).ready_in_ms == longest.load() - t0);
}

TEST_CASE("a success or a check from before another process's verdict changes nothing", "[integration][state][sqlite]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.path() + "/state.db";
  Process a(path, clock), b(path, clock);

  SECTION("a slow success does not end a cooldown that began after its request") {
    auto slow = a.pool.Acquire(0);  // a's request goes out at t0
    REQUIRE(slow);
    clock.Advance(10);
    auto fast = b.pool.Acquire(0);
    REQUIRE(fast);
    b.pool.Report(*fast, RateLimitedUntil(clock.NowMs() + 1000));  // b: 429 at t0+10
    clock.Advance(1500);                                          // the cooldown is over...
    a.pool.Report(*slow, Out(Outcome::kOk, 200));                   // ...when a's old request answers
    // The key is not simply ready again: the next lease is still the trial.
    auto next = b.pool.Acquire(0);
    REQUIRE(next);
    CHECK(next->trial);
    b.pool.Report(*next, Out(Outcome::kOk, 200));
  }
  SECTION("a health check that started before a 401 elsewhere does not revive the key") {
    const int64_t check_started = clock.NowMs();
    clock.Advance(10);
    auto lease = b.pool.Acquire(0);
    REQUIRE(lease);
    b.pool.Report(*lease, Out(Outcome::kAuthError, 401, "invalid key"));
    a.pool.ApplyHealthCheck(0, Out(Outcome::kOk, 200), false, check_started);
    CHECK(b.pool.SnapshotKey(0).state == KeyState::kDisabled);
    CHECK(a.pool.SnapshotKey(0).state == KeyState::kDisabled);
    // A check that starts after it does.
    a.pool.ApplyHealthCheck(0, Out(Outcome::kOk, 200), false, clock.NowMs());
    CHECK(b.pool.SnapshotKey(0).state == KeyState::kReady);
  }
  SECTION("a reset clears a disabled key for every process and an older cause does not bring it back") {
    auto lease = b.pool.Acquire(0);
    REQUIRE(lease);
    b.pool.Report(*lease, Out(Outcome::kAuthError, 401, "invalid key"));
    REQUIRE(a.pool.SnapshotKey(0).state == KeyState::kDisabled);
    auto id = a.store->IdOf(keypool::KeyIdentity{"openai", "openai#1", "", "", OpenAiSecrets(1)[0], 0});
    REQUIRE(id);
    REQUIRE(a.store->Reset(*id));
    CHECK(a.pool.SnapshotKey(0).state == KeyState::kReady);
    CHECK(b.pool.SnapshotKey(0).state == KeyState::kReady);
  }
}

TEST_CASE("maxInFlight counts the leases of every process", "[integration][state][sqlite]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.path() + "/state.db";
  FailoverPolicy policy;
  policy.max_in_flight = 1;
  Process a(path, clock, policy), b(path, clock, policy);
  auto held = a.pool.Acquire(0);
  REQUIRE(held);
  REQUIRE(held->index == 0);
  auto other = b.pool.Acquire(0);
  REQUIRE(other);
  CHECK(other->index == 1);  // key 1 is at its cap in the other process
  CHECK(b.pool.SnapshotKey(0).in_flight == 1);
  a.pool.Report(*held, Out(Outcome::kOk, 200));
  auto freed = b.pool.Acquire(0);
  REQUIRE(freed);
  CHECK(freed->index == 0);
  b.pool.Report(*freed, Out(Outcome::kOk, 200));
  b.pool.Report(*other, Out(Outcome::kOk, 200));

  SECTION("a lease of a process that died expires") {
    auto orphan = a.pool.Acquire(0);  // a "crashes" holding it (never reported in time)
    REQUIRE(orphan);
    clock.Advance(policy.deadline_ms + 5001);
    auto taken = b.pool.Acquire(0);
    REQUIRE(taken);
    CHECK(taken->index == 0);
    b.pool.Report(*taken, Out(Outcome::kOk, 200));
    a.pool.Report(*orphan, Out(Outcome::kOk, 200));
  }
}

TEST_CASE("prune removes the keys no config names and keeps the others", "[integration][state][sqlite]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.path() + "/state.db";
  Process a(path, clock);
  for (size_t k = 0; k < 2; ++k) {
    auto lease = a.pool.Acquire(k);
    REQUIRE(lease);
    a.pool.Report(*lease, Out(Outcome::kAuthError, 401));
  }
  auto all = a.store->List();
  REQUIRE(all);
  REQUIRE(all->size() == 2);
  auto keep = a.store->IdOf(keypool::KeyIdentity{"openai", "openai#1", "", "", OpenAiSecrets(1)[0], 0});
  REQUIRE(keep);
  auto gone = a.store->Prune({*keep});
  REQUIRE(gone);
  CHECK(*gone == 1);
  auto left = a.store->List();
  REQUIRE(left);
  REQUIRE(left->size() == 1);
  CHECK((*left)[0].id == *keep);
}

TEST_CASE("calls that change no state make no store write", "[integration][state][sqlite]") {
  TempDir dir;
  FakeClock clock;
  auto counting = std::make_unique<CountingBackend>(state::MakeSqliteBackend(dir.path() + "/state.db"));
  CountingBackend* backend = counting.get();
  auto store = std::make_shared<state::SharedKeyStateStore>(std::move(counting));
  KeyPool pool("openai", Keys(OpenAiSecrets(2)), FailoverPolicy{}, clock, store);
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 2000; ++i) {
    auto lease = pool.Acquire(0);
    REQUIRE(lease);
    pool.Report(*lease, Out(Outcome::kOk, 200));
  }
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count();
  // Counters are written at most once a second; nothing else changed.
  CHECK(backend->writes.load() <= seconds + 1);
  CHECK(backend->reads.load() <= 2);
  CHECK(pool.SnapshotKey(0).requests == 2000);
}

TEST_CASE("a corrupt sqlite store degrades to memory and recovers by itself", "[integration][state][sqlite]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.path() + "/state.db";
  dir.WriteFile("state.db", std::string(8192, 'x'));  // not a database
  Process a(path, clock);
  auto lease = a.pool.Acquire(0);
  REQUIRE(lease);
  a.pool.Report(*lease, RateLimitedUntil(clock.NowMs() + 60000));
  CHECK(a.store->degraded());
  CHECK(a.pool.SnapshotKey(0).state == KeyState::kCoolingDown);  // from memory
  auto next = a.pool.Acquire(0);
  REQUIRE(next);
  CHECK(next->index == 1);
  a.pool.Report(*next, Out(Outcome::kOk, 200));

  std::filesystem::remove(path);  // the person deletes the broken file
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the store retries once a second
  auto after = a.pool.Acquire(0);
  REQUIRE(after);
  CHECK(after->index == 1);
  a.pool.Report(*after, Out(Outcome::kOk, 200));
  CHECK_FALSE(a.store->degraded());
  Process b(path, clock);  // what a learned meanwhile is shared now
  CHECK(b.pool.SnapshotKey(0).state == KeyState::kCoolingDown);
}

TEST_CASE("the sqlite store is private to its user and holds no key bytes", "[integration][state][sqlite]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.path() + "/sub/state.db";
  {
    Process a(path, clock);
    for (size_t k = 0; k < 2; ++k) {
      auto lease = a.pool.Acquire(k);
      REQUIRE(lease);
      a.pool.Report(*lease, Out(Outcome::kAuthError, 401, "bad key " + lease->secret));
    }
  }
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat((dir.path() + "/sub").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  std::string bytes = ReadAll(path) + ReadAll(path + "-wal");
  CHECK(bytes.find("auth error") != std::string::npos);  // the records are there...
  CHECK_FALSE(FindSecret(bytes, OpenAiSecrets(2)).has_value());  // ...the keys are not
  for (const std::string& key : OpenAiSecrets(2)) CHECK(bytes.find(Fingerprint(key)) == std::string::npos);
}

}  // namespace
}  // namespace kpm::testing
