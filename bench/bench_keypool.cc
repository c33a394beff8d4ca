// bench_keypool: micro benchmarks of the in-process pieces every call goes through.
// KeyPool::Acquire + Report, RunCall with an attempt that answers at once, the cost of
// skipping cooling keys (probe discipline), the Scrubber and Fingerprint.
// Real SystemClock (its cost is part of every Acquire/Report). Each operation is timed
// on its own with steady_clock; the "clock overhead" row says what that adds.
//
//   bench_keypool [--quick]     (--quick: 10x fewer iterations, for a smoke run)

#include <atomic>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "bench/bench_stats.h"
#include "common/redact.h"
#include "keypool/clock.h"
#include "keypool/failover.h"
#include "keypool/key_pool.h"

namespace kpm::bench {
namespace {

using keypool::AttemptOutcome;
using keypool::FailoverPolicy;
using keypool::KeyLease;
using keypool::KeyPool;
using keypool::KeySpec;
using keypool::Outcome;

int g_scale = 1;  // divides iteration counts (--quick)

int Iters(int n) { return std::max(100, n / g_scale); }

/// A realistic key: "sk-proj-" + 48 characters from a fixed-seed generator.
std::string MakeKey(std::mt19937& rng) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string key = "sk-proj-";
  for (int i = 0; i < 48; ++i) key += kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return key;
}

std::vector<KeySpec> MakeKeys(int n) {
  std::mt19937 rng(42);
  std::vector<KeySpec> keys;
  for (int i = 0; i < n; ++i) keys.push_back(KeySpec{MakeKey(rng), "bench#" + std::to_string(i + 1), "", "", "", "", {}, ""});
  return keys;
}

/// Keeps a value alive so the optimizer cannot drop the work that made it.
template <typename T>
void Keep(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

void BenchClockOverhead() {
  const int n = Iters(1000000);
  Samples s;
  s.Reserve(n);
  auto wall0 = BenchClock::now();
  for (int i = 0; i < n; ++i) {
    auto t0 = BenchClock::now();
    auto t1 = BenchClock::now();
    s.Add(ElapsedNs(t0, t1));
  }
  PrintRow("clock overhead (empty timed region)", s, Unit::kNs, n, ElapsedNs(wall0, BenchClock::now()) / 1e9);
}

/// One Acquire + Report(ok) per operation on a pool of `keys` keys, from `threads`
/// threads at once (each does `per_thread` operations after a warm-up).
void BenchAcquireReport(int keys, int threads, keypool::Strategy strategy) {
  keypool::SystemClock clock;
  FailoverPolicy policy;
  policy.strategy = strategy;
  KeyPool pool("bench", MakeKeys(keys), policy, clock);
  const int per_thread = Iters(threads == 1 ? 200000 : 50000);
  const int warmup = per_thread / 10;
  std::vector<Samples> samples(threads);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  BenchClock::time_point wall0;
  auto body = [&](int t) {
    const AttemptOutcome ok{};
    samples[t].Reserve(per_thread);
    for (int i = 0; i < warmup; ++i) {
      auto lease = pool.Acquire(pool.NextStart());
      if (lease) Keep(pool.Report(*lease, ok));
    }
    ready.fetch_add(1);
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < per_thread; ++i) {
      auto t0 = BenchClock::now();
      auto lease = pool.Acquire(pool.NextStart());
      if (lease) Keep(pool.Report(*lease, ok));
      samples[t].Add(ElapsedNs(t0, BenchClock::now()));
    }
  };
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) workers.emplace_back(body, t);
  while (ready.load() < threads) std::this_thread::yield();
  wall0 = BenchClock::now();
  go = true;
  for (auto& w : workers) w.join();
  double wall = ElapsedNs(wall0, BenchClock::now()) / 1e9;
  Samples all;
  for (auto& s : samples) all.Merge(s);
  std::string name = "Acquire+Report " + std::to_string(keys) + " keys, " + std::to_string(threads) + " thr" +
                     (strategy == keypool::Strategy::kRoundRobin ? ", rr" : "");
  PrintRow(name, all, Unit::kNs, static_cast<double>(per_thread) * threads, wall);
}

/// RunCall over one pool whose attempt answers ok at once. `cooling` keys at the front
/// of the pool are cooling for the whole run (a 429 with a one-hour Retry-After), so the
/// call skips them without an attempt (probe discipline).
void BenchRunCall(int keys, int cooling, int threads = 1) {
  keypool::SystemClock clock;
  FailoverPolicy policy;
  KeyPool pool("bench", MakeKeys(keys), policy, clock);
  for (int c = 0; c < cooling; ++c) {
    std::vector<bool> exclude(static_cast<size_t>(c), true);
    auto lease = pool.Acquire(static_cast<size_t>(c), exclude);
    AttemptOutcome limited{Outcome::kRateLimited, 429, "rate limited", {}};
    limited.limits.retry_at_ms = clock.NowMs() + 3600 * 1000;
    if (lease) pool.Report(*lease, limited);
  }
  std::atomic<int64_t> attempts{0};
  keypool::AttemptFn fn = [&](const KeyLease&, int64_t) {
    attempts.fetch_add(1, std::memory_order_relaxed);
    return AttemptOutcome{};
  };
  const std::vector<keypool::ChainStep> chain = {{&pool, fn}};
  const int per_thread = Iters(threads == 1 ? 50000 : 10000);
  const int warmup = per_thread / 10;
  std::vector<Samples> samples(threads);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  int64_t wrong = 0;
  std::mutex wrong_mu;
  auto body = [&](int t) {
    samples[t].Reserve(per_thread);
    for (int i = 0; i < warmup; ++i) Keep(keypool::RunCall(chain, keypool::CallOptions{}, clock).outcome);
    ready.fetch_add(1);
    while (!go.load()) std::this_thread::yield();
    int64_t local_wrong = 0;
    for (int i = 0; i < per_thread; ++i) {
      auto t0 = BenchClock::now();
      keypool::CallResult r = keypool::RunCall(chain, keypool::CallOptions{}, clock);
      samples[t].Add(ElapsedNs(t0, BenchClock::now()));
      if (r.outcome != Outcome::kOk || r.attempts.size() != 1) ++local_wrong;
    }
    std::lock_guard<std::mutex> lock(wrong_mu);
    wrong += local_wrong;
  };
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) workers.emplace_back(body, t);
  while (ready.load() < threads) std::this_thread::yield();
  auto wall0 = BenchClock::now();
  go = true;
  for (auto& w : workers) w.join();
  double wall = ElapsedNs(wall0, BenchClock::now()) / 1e9;
  Samples all;
  for (auto& s : samples) all.Merge(s);
  std::string name = "RunCall ok, " + std::to_string(keys) + " keys";
  if (cooling > 0) name += ", " + std::to_string(cooling) + " cooling";
  if (threads > 1) name += ", " + std::to_string(threads) + " thr";
  PrintRow(name, all, Unit::kNs, static_cast<double>(per_thread) * threads, wall);
  if (wrong != 0) {
    std::printf("  !! %lld calls took more than one attempt or failed (probe discipline broken?)\n",
                static_cast<long long>(wrong));
  }
}

/// A 4 KB upstream error body (JSON-ish text, as an upstream 4xx might carry).
std::string MakeText(const std::string* echoed_key) {
  std::string text;
  std::mt19937 rng(7);
  static const char kWords[][12] = {"error", "rate", "limit", "request", "tokens", "model", "please",
                                    "retry", "\"code\":", "429", "org-xyz", "https://"};
  while (text.size() < 4096) {
    text += kWords[rng() % 12];
    text += ' ';
    if (echoed_key && text.size() > 2048 && text.find(*echoed_key) == std::string::npos) {
      text += "Incorrect API key provided: " + *echoed_key + ". ";
    }
  }
  text.resize(4096);
  return text;
}

void BenchScrubber(int keys, bool with_key) {
  std::vector<KeySpec> specs = MakeKeys(keys);
  Scrubber scrubber;
  for (const auto& k : specs) scrubber.Add(k.secret);
  const std::string& echoed = specs[static_cast<size_t>(keys / 2)].secret;
  const std::string text = MakeText(with_key ? &echoed : nullptr);
  const int n = Iters(keys >= 100 ? 5000 : 20000);
  for (int i = 0; i < n / 10; ++i) Keep(scrubber.Scrub(text));
  Samples s;
  s.Reserve(n);
  auto wall0 = BenchClock::now();
  for (int i = 0; i < n; ++i) {
    auto t0 = BenchClock::now();
    std::string out = scrubber.Scrub(text);
    s.Add(ElapsedNs(t0, BenchClock::now()));
    Keep(out);
    if (with_key && out.find(echoed) != std::string::npos) {
      std::printf("  !! the scrubber left the key in the text\n");
      break;
    }
  }
  std::string name = "Scrub 4 KB, " + std::to_string(keys) + " keys" + (with_key ? ", 1 key in text" : ", clean");
  PrintRow(name, s, Unit::kNs, n, ElapsedNs(wall0, BenchClock::now()) / 1e9);
}

/// Building the index: Add() of `keys` keys plus the first Scrub() of a 4 KB line (the
/// index is built there), over a few runs.
void BenchScrubberBuild(int keys) {
  std::vector<KeySpec> specs = MakeKeys(keys);
  const std::string text = MakeText(nullptr);
  const int n = keys >= 4000 ? 5 : 20;  // not scaled by --quick: few runs already
  Samples s;
  s.Reserve(n);
  auto wall0 = BenchClock::now();
  for (int i = 0; i < n; ++i) {
    auto t0 = BenchClock::now();
    Scrubber scrubber;
    for (const auto& k : specs) scrubber.Add(k.secret);
    std::string out = scrubber.Scrub(text);
    s.Add(ElapsedNs(t0, BenchClock::now()));
    Keep(out);
  }
  std::string name = "Scrubber build + first Scrub, " + std::to_string(keys) + " keys";
  PrintRow(name, s, Unit::kNs, n, ElapsedNs(wall0, BenchClock::now()) / 1e9);
}

void BenchFingerprint() {
  std::mt19937 rng(3);
  const std::string key = MakeKey(rng);
  const int n = Iters(1000000);
  Samples s;
  s.Reserve(n);
  auto wall0 = BenchClock::now();
  for (int i = 0; i < n; ++i) {
    auto t0 = BenchClock::now();
    std::string fp = Fingerprint(key);
    s.Add(ElapsedNs(t0, BenchClock::now()));
    Keep(fp);
  }
  PrintRow("Fingerprint (56-char sk-proj- key)", s, Unit::kNs, n, ElapsedNs(wall0, BenchClock::now()) / 1e9);
}

int Main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      g_scale = 10;
    } else {
      std::fprintf(stderr, "usage: bench_keypool [--quick]\n");
      return 2;
    }
  }
  // Production runs at info with a stderr sink; a null sink keeps the formatting cost
  // of any line that would be logged without writing it. Nothing here logs at info on
  // the happy path (a switch would).
  auto logger = std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  logger->set_level(spdlog::level::info);
  spdlog::set_default_logger(logger);

  std::printf("bench_keypool: %u hardware threads%s\n", std::thread::hardware_concurrency(),
              g_scale > 1 ? " (--quick)" : "");
  PrintHeader("KeyPool / RunCall / Scrubber / Fingerprint, per operation", Unit::kNs);
  BenchClockOverhead();
  for (int keys : {3, 30, 300}) BenchAcquireReport(keys, 1, keypool::Strategy::kSequential);
  for (int keys : {3, 30, 300}) BenchAcquireReport(keys, 8, keypool::Strategy::kSequential);
  BenchAcquireReport(30, 8, keypool::Strategy::kRoundRobin);
  for (int keys : {3, 30, 300}) BenchRunCall(keys, 0);
  BenchRunCall(3, 1);
  BenchRunCall(30, 1);
  BenchRunCall(300, 299);
  BenchRunCall(3, 0, 8);
  BenchRunCall(3, 1, 8);
  for (int keys : {10, 100, 4000}) {
    BenchScrubber(keys, false);
    BenchScrubber(keys, true);
  }
  for (int keys : {1000, 4000, 16000}) BenchScrubberBuild(keys);
  BenchFingerprint();
  return 0;
}

}  // namespace
}  // namespace kpm::bench

int main(int argc, char** argv) { return kpm::bench::Main(argc, argv); }
