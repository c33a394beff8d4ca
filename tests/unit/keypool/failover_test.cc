#include "keypool/failover.h"

#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <sstream>

#include "tests/support/fake_clock.h"
#include "tests/unit/keypool/pool_test_util.h"

namespace kpm::keypool {
namespace {

using kpm::testing::FakeClock;
using kpm::testing::Keys;
using kpm::testing::OpenAiSecrets;
using kpm::testing::Out;
using kpm::testing::Script;
using kpm::testing::Summary;
using Strings = std::vector<std::string>;

AttemptOutcome WithRetry(AttemptOutcome out, int64_t retry_at) {
  out.limits.retry_at_ms = retry_at;
  return out;
}

TEST_CASE("Each row of SPEC §3: the key's new state, what the call does next, the attempts", "[unit][keypool][failover]") {
  struct Row {
    const char* name;
    AttemptOutcome first;       // what openai#1 answers; the others answer ok
    KeyState key_state;         // openai#1 afterwards
    std::optional<int64_t> ready_in_ms;
    Outcome call;               // the call's outcome
    Strings attempts;
    bool backoff;               // the call slept before the next key
  };
  const int64_t now = FakeClock::kStartMs;
  const std::vector<Row> rows = {
      {"ok", Out(Outcome::kOk, 200), KeyState::kReady, {}, Outcome::kOk, {"openai#1 ok"}, false},
      {"429 without a hint", Out(Outcome::kRateLimited, 429), KeyState::kCoolingDown, 1000, Outcome::kOk,
       {"openai#1 rate_limited", "openai#2 ok"}, false},
      {"429 with Retry-After 20s", WithRetry(Out(Outcome::kRateLimited, 429), now + 20000), KeyState::kCoolingDown,
       20000, Outcome::kOk, {"openai#1 rate_limited", "openai#2 ok"}, false},
      {"quota exhausted", Out(Outcome::kQuotaExhausted, 429), KeyState::kCoolingDown, 3600000, Outcome::kOk,
       {"openai#1 quota_exhausted", "openai#2 ok"}, false},
      {"401", Out(Outcome::kAuthError, 401), KeyState::kDisabled, {}, Outcome::kOk,
       {"openai#1 auth_error", "openai#2 ok"}, false},
      {"503 once (other keys answer)", Out(Outcome::kServerError, 503), KeyState::kReady, {}, Outcome::kOk,
       {"openai#1 server_error", "openai#2 ok"}, true},
      {"connection refused", Out(Outcome::kNetworkError, 0), KeyState::kCoolingDown, 5000, Outcome::kOk,
       {"openai#1 network_error", "openai#2 ok"}, false},
      {"timeout", Out(Outcome::kTimeout, 0), KeyState::kCoolingDown, 5000, Outcome::kOk,
       {"openai#1 timeout", "openai#2 ok"}, false},
      {"context too long", Out(Outcome::kContextTooLong, 400, "maximum context length is 8192 tokens"),
       KeyState::kReady, {}, Outcome::kContextTooLong, {"openai#1 context_too_long"}, false},
      {"bad request", Out(Outcome::kBadRequest, 400, "Unknown model: gpt-9"), KeyState::kReady, {},
       Outcome::kBadRequest, {"openai#1 bad_request"}, false},
      {"cancelled by the caller", Out(Outcome::kCancelled, 0), KeyState::kReady, {}, Outcome::kCancelled,
       {"openai#1 cancelled"}, false},
  };
  for (const Row& row : rows) {
    SECTION(row.name) {
      FakeClock clock;
      KeyPool pool("openai", Keys(OpenAiSecrets(3)), FailoverPolicy{}, clock);
      Script script;
      script.Queue("openai#1", row.first);
      CallResult r = RunCall({{&pool, script.Fn()}}, CallOptions{}, clock);
      KeySnapshot k = pool.SnapshotKey(0);
      CHECK(k.state == row.key_state);
      CHECK(k.ready_in_ms == row.ready_in_ms);
      CHECK(r.outcome == row.call);
      CHECK(Summary(r.attempts) == row.attempts);
      if (row.backoff) {
        CHECK(clock.slept_ms() >= 125);
        CHECK(clock.slept_ms() <= 375);
      } else {
        CHECK(clock.slept_ms() == 0);
      }
      if (r.outcome == Outcome::kOk) CHECK(r.key->label == (row.attempts.size() == 1 ? "openai#1" : "openai#2"));
      if (r.outcome == Outcome::kBadRequest || r.outcome == Outcome::kContextTooLong) {
        CHECK(r.message == row.first.message);
      }
      CHECK(k.requests == 1);  // counters record every attempt
      REQUIRE(r.pools.size() == 1);
    }
  }
}

TEST_CASE("A 5xx that repeats on a second key changes no key and ends the call after the retry budget",
          "[unit][keypool][failover]") {
  FakeClock clock;
  KeyPool pool("openai", Keys(OpenAiSecrets(3)), FailoverPolicy{}, clock);
  Script script;
  for (auto label : {"openai#1", "openai#2", "openai#3"}) script.Always(label, Out(Outcome::kServerError, 503, "overloaded"));
  CallResult r = RunCall({{&pool, script.Fn()}}, CallOptions{}, clock);
  CHECK(r.outcome == Outcome::kServerError);
  CHECK(r.message == "overloaded");
  CHECK(Summary(r.attempts) == Strings{"openai#1 server_error", "openai#2 server_error"});
  for (const auto& k : pool.Snapshot().keys) CHECK(k.state == KeyState::kReady);

  SECTION("and again in the next call: still the provider's fault, not a key's") {
    RunCall({{&pool, script.Fn()}}, CallOptions{}, clock);
    for (const auto& k : pool.Snapshot().keys) CHECK(k.state == KeyState::kReady);
  }
}

TEST_CASE("A key that alone fails with 5xx in consecutive calls while others answer is cooled",
          "[unit][keypool][failover]") {
  FakeClock clock;
  KeyPool pool("openai", Keys(OpenAiSecrets(2)), FailoverPolicy{}, clock);
  Script script;
  script.Always("openai#1", Out(Outcome::kServerError, 502));
  RunCall({{&pool, script.Fn()}}, CallOptions{}, clock);
  CHECK(pool.SnapshotKey(0).state == KeyState::kReady);  // once may be bad luck
  RunCall({{&pool, script.Fn()}}, CallOptions{}, clock);
  CHECK(pool.SnapshotKey(0).state == KeyState::kCoolingDown);
  CHECK(pool.SnapshotKey(0).ready_in_ms == 5000);
  CHECK(pool.SnapshotKey(0).reason == "repeated server errors (502)");
  script.ResetCalls();
  CallResult r = RunCall({{&pool, script.Fn()}}, CallOptions{}, clock);
  CHECK(Summary(r.attempts) == Strings{"openai#2 ok"});

  SECTION("a success in between resets the count") {
    FakeClock clock2;
    KeyPool p2("openai", Keys(OpenAiSecrets(2)), FailoverPolicy{}, clock2);
    Script s2;
    s2.Queue("openai#1", Out(Outcome::kServerError, 502));
    RunCall({{&p2, s2.Fn()}}, CallOptions{}, clock2);
    RunCall({{&p2, s2.Fn()}}, CallOptions{}, clock2);  // openai#1 answers
    s2.Queue("openai#1", Out(Outcome::kServerError, 502));
    RunCall({{&p2, s2.Fn()}}, CallOptions{}, clock2);
    CHECK(p2.SnapshotKey(0).state == KeyState::kReady);
  }
}

TEST_CASE("With a single key a 5xx is retried on it after the backoff", "[unit][keypool][failover]") {
  FakeClock clock;
  KeyPool pool("local", {}, FailoverPolicy{}, clock);
  Script script;
  script.Queue("local", Out(Outcome::kServerError, 500));
  CallResult r = RunCall({{&pool, script.Fn()}}, CallOptions{}, clock);
  CHECK(r.outcome == Outcome::kOk);
  CHECK(Summary(r.attempts) == Strings{"local server_error", "local ok"});
}

TEST_CASE("Exhaustion lists every key with its state, reason and ready-in", "[unit][keypool][failover]") {
  FakeClock clock;
  auto secrets = OpenAiSecrets(4);
  auto keys = Keys(secrets);
  keys[3].disabled_reason = "environment variable OPENAI_KEY_4 is not set";
  keys[3].secret.clear();
  KeyPool pool("openai", keys, FailoverPolicy{}, clock);
  Script script;
  script.Queue("openai#1", WithRetry(Out(Outcome::kRateLimited, 429), clock.NowMs() + 41000));
  script.Queue("openai#2", Out(Outcome::kAuthError, 401, "Incorrect API key provided: " + secrets[1]));
  script.Queue("openai#3", Out(Outcome::kNetworkError, 0, "connection refused"));
  CallResult r = RunCall({{&pool, script.Fn()}}, CallOptions{}, clock);
  CHECK(r.outcome == Outcome::kNetworkError);  // the class of the last attempt
  CHECK(Summary(r.attempts) == Strings{"openai#1 rate_limited", "openai#2 auth_error", "openai#3 network_error"});
  CHECK(r.message ==
        "no usable key left (openai):\n"
        "  openai: openai#1 sk-proj-…9f3a: cooling_down, rate limited (429), ready in 41s\n"
        "  openai: openai#2 sk-proj-…c3d4: disabled, auth error (401): Incorrect API key provided: [redacted]\n"
        "  openai: openai#3 sk-proj-…ab12: cooling_down, network error: connection refused, ready in 5s\n"
        "  openai: openai#4 (no key): disabled, environment variable OPENAI_KEY_4 is not set");
  for (const auto& s : secrets) CHECK(r.message.find(s) == std::string::npos);
  for (const auto& a : r.attempts) CHECK(a.message.find(secrets[1]) == std::string::npos);

  SECTION("the next call spends no round trip and names the soonest key's class") {
    script.ResetCalls();
    CallResult again = RunCall({{&pool, script.Fn()}}, CallOptions{}, clock);
    CHECK(script.calls().empty());
    CHECK(again.outcome == Outcome::kNetworkError);  // openai#3 is back first (5s)
    CHECK(again.message.find("ready in 41s") != std::string::npos);
  }
}

TEST_CASE("An exhausted provider falls back to the next pool of the chain", "[unit][keypool][failover]") {
  FakeClock clock;
  KeyPool openai("openai", Keys(OpenAiSecrets(2)), FailoverPolicy{}, clock);
  KeyPool openrouter("openrouter", Keys({"sk-or-v1-0123456789abcdefABCD"}, "openrouter"), FailoverPolicy{}, clock);
  Script script;
  std::vector<FailoverEvent> events;
  CallOptions options;
  options.on_event = [&](const FailoverEvent& e) { events.push_back(e); };

  SECTION("after every key is used up") {
    script.Always("openai#1", Out(Outcome::kRateLimited, 429));
    script.Always("openai#2", Out(Outcome::kQuotaExhausted, 402));
    CallResult r = RunCall({{&openai, script.Fn()}, {&openrouter, script.Fn()}}, options, clock);
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.provider == "openrouter");
    CHECK(Summary(r.attempts) == Strings{"openai#1 rate_limited", "openai#2 quota_exhausted", "openrouter#1 ok"});
    CHECK(r.attempts[2].provider == "openrouter");
    REQUIRE(r.pools.size() == 2);
    CHECK(r.pools[0].provider == "openai");
    CHECK(r.pools[0].active_key == std::nullopt);
    REQUIRE(events.size() == 2);
    CHECK(events[0].kind == FailoverEvent::Kind::kSwitch);
    CHECK(events[0].text == "openai#1 rate_limited, trying openai#2");
    CHECK(events[1].kind == FailoverEvent::Kind::kFallback);
    CHECK(events[1].text == "openai no key left, falling back to openrouter");
  }
  SECTION("after context_too_long, without trying another key of the provider") {
    script.Always("openai#1", Out(Outcome::kContextTooLong, 400));
    CallResult r = RunCall({{&openai, script.Fn()}, {&openrouter, script.Fn()}}, options, clock);
    CHECK(r.outcome == Outcome::kOk);
    CHECK(Summary(r.attempts) == Strings{"openai#1 context_too_long", "openrouter#1 ok"});
  }
  SECTION("when every pool is exhausted the report covers every key of every pool") {
    script.Always("openai#1", Out(Outcome::kAuthError, 401));
    script.Always("openai#2", Out(Outcome::kAuthError, 401));
    script.Always("openrouter#1", Out(Outcome::kQuotaExhausted, 402));
    CallResult r = RunCall({{&openai, script.Fn()}, {&openrouter, script.Fn()}}, options, clock);
    CHECK(r.outcome == Outcome::kQuotaExhausted);
    CHECK(r.message.rfind("no usable key left (openai, then openrouter):", 0) == 0);
    CHECK(r.message.find("openai#2 sk-proj-…c3d4: disabled") != std::string::npos);
    CHECK(r.message.find("openrouter#1 sk-or-v1-…ABCD: cooling_down, quota exhausted, ready in 1h 0m") !=
          std::string::npos);
  }
  SECTION("bad_request does not fall back") {
    script.Always("openai#1", Out(Outcome::kBadRequest, 404, "model not found"));
    CallResult r = RunCall({{&openai, script.Fn()}, {&openrouter, script.Fn()}}, options, clock);
    CHECK(r.outcome == Outcome::kBadRequest);
    CHECK(r.message == "model not found");
    CHECK(r.attempts.size() == 1);
  }
}

TEST_CASE("One deadline covers the whole call; no attempt starts past it", "[unit][keypool][failover]") {
  FakeClock clock;
  FailoverPolicy policy;
  policy.deadline_ms = 120000;
  KeyPool pool("openai", Keys(OpenAiSecrets(4)), policy, clock);
  Script script;
  const int64_t start = clock.NowMs();
  AttemptFn slow = [&](const KeyLease& key, int64_t deadline) {
    script.Fn()(key, deadline);
    clock.Advance(50000);
    return Out(Outcome::kTimeout);
  };
  CallResult r = RunCall({{&pool, slow}}, CallOptions{}, clock);
  CHECK(r.outcome == Outcome::kTimeout);
  CHECK(r.attempts.size() == 3);  // at 0, 50 and 100 s; none at 150 s
  CHECK(r.attempts[0].elapsed_ms == 50000);
  for (int64_t d : script.deadlines()) CHECK(d == start + 120000);
  CHECK(r.message.find("deadline") != std::string::npos);
}

TEST_CASE("Cancellation stops the call: no further key, no state change", "[unit][keypool][failover]") {
  FakeClock clock;
  KeyPool pool("openai", Keys(OpenAiSecrets(3)), FailoverPolicy{}, clock);
  CancelToken cancel;
  CallOptions options;
  options.cancel = &cancel;

  SECTION("during an attempt (the aborted transfer looks like a network error)") {
    AttemptFn fn = [&](const KeyLease&, int64_t) {
      cancel.Cancel();
      return Out(Outcome::kNetworkError, 0, "aborted");
    };
    CallResult r = RunCall({{&pool, fn}}, options, clock);
    CHECK(r.outcome == Outcome::kCancelled);
    CHECK(Summary(r.attempts) == Strings{"openai#1 cancelled"});
    CHECK(pool.SnapshotKey(0).state == KeyState::kReady);
  }
  SECTION("during the backoff after a 5xx") {
    Script script;
    script.Queue("openai#1", Out(Outcome::kServerError, 503));
    clock.OnSleep([&](int64_t) { cancel.Cancel(); });
    CallResult r = RunCall({{&pool, script.Fn()}}, options, clock);
    CHECK(r.outcome == Outcome::kCancelled);
    CHECK(script.calls() == Strings{"openai#1"});
  }
  SECTION("before the call starts") {
    cancel.Cancel();
    Script script;
    CallResult r = RunCall({{&pool, script.Fn()}}, options, clock);
    CHECK(r.outcome == Outcome::kCancelled);
    CHECK(r.attempts.empty());
  }
}

TEST_CASE("maxWaitMs waits for a cooling key instead of failing", "[unit][keypool][failover]") {
  FakeClock clock;
  FailoverPolicy policy;
  policy.max_wait_ms = 5000;
  KeyPool pool("openai", Keys(OpenAiSecrets(2)), policy, clock);
  Script script;
  std::vector<FailoverEvent> events;
  CallOptions options;
  options.on_event = [&](const FailoverEvent& e) { events.push_back(e); };
  const int64_t t0 = clock.NowMs();

  SECTION("the earliest key is back within the budget") {
    script.Queue("openai#1", WithRetry(Out(Outcome::kRateLimited, 429), t0 + 3000));
    script.Queue("openai#2", WithRetry(Out(Outcome::kRateLimited, 429), t0 + 4000));
    CallResult r = RunCall({{&pool, script.Fn()}}, options, clock);
    CHECK(r.outcome == Outcome::kOk);
    CHECK(Summary(r.attempts) == Strings{"openai#1 rate_limited", "openai#2 rate_limited", "openai#1 ok"});
    CHECK(clock.slept_ms() == 3000);
    CHECK(std::any_of(events.begin(), events.end(), [](const auto& e) { return e.kind == FailoverEvent::Kind::kWait; }));
  }
  SECTION("not within the budget: exhaustion") {
    script.Queue("openai#1", WithRetry(Out(Outcome::kRateLimited, 429), t0 + 6000));
    script.Queue("openai#2", WithRetry(Out(Outcome::kRateLimited, 429), t0 + 9000));
    CallResult r = RunCall({{&pool, script.Fn()}}, options, clock);
    CHECK(r.outcome == Outcome::kRateLimited);
    CHECK(clock.slept_ms() == 0);
  }
  SECTION("a cancellation ends the wait") {
    CancelToken cancel;
    options.cancel = &cancel;
    clock.OnSleep([&](int64_t) { cancel.Cancel(); });
    script.Queue("openai#1", WithRetry(Out(Outcome::kRateLimited, 429), t0 + 3000));
    script.Queue("openai#2", WithRetry(Out(Outcome::kRateLimited, 429), t0 + 3000));
    CallResult r = RunCall({{&pool, script.Fn()}}, options, clock);
    CHECK(r.outcome == Outcome::kCancelled);
    CHECK(r.attempts.size() == 2);
  }
}

TEST_CASE("Probe discipline: over a 60 s outage one key is tried at most once per cooldown window",
          "[unit][keypool][failover]") {
  for (Outcome failure : {Outcome::kRateLimited, Outcome::kNetworkError}) {
    CAPTURE(OutcomeName(failure));
    FakeClock clock;
    KeyPool pool("openai", Keys(OpenAiSecrets(2)), FailoverPolicy{}, clock);
    const int64_t outage_end = clock.NowMs() + 60000;
    std::vector<int64_t> tries;  // when openai#1 was attempted
    std::vector<int64_t> windows;  // the cooldown each failure set
    AttemptFn fn = [&](const KeyLease& key, int64_t) {
      if (key.index != 0) return Out(Outcome::kOk, 200);
      tries.push_back(clock.NowMs());
      return clock.NowMs() < outage_end ? Out(failure, failure == Outcome::kRateLimited ? 429 : 0) : Out(Outcome::kOk, 200);
    };
    int failed_calls = 0;
    for (int call = 0; call < 1000; ++call) {  // a call every 100 ms for 100 s
      CallResult r = RunCall({{&pool, fn}}, CallOptions{}, clock);
      if (r.outcome != Outcome::kOk) ++failed_calls;
      if (!tries.empty() && tries.back() == clock.NowMs() && clock.NowMs() < outage_end) {
        windows.push_back(*pool.SnapshotKey(0).ready_in_ms);
      }
      clock.Advance(100);
    }
    CHECK(failed_calls == 0);
    for (size_t i = 1; i < tries.size(); ++i) {
      if (i - 1 < windows.size()) CHECK(tries[i] - tries[i - 1] >= windows[i - 1]);
    }
    size_t during_outage = std::count_if(tries.begin(), tries.end(), [&](int64_t t) { return t < outage_end; });
    CHECK(during_outage <= 7);  // vs 600 calls made while it lasted
    CHECK(tries.back() >= outage_end);  // back in use once the outage ends
    CHECK(pool.SnapshotKey(0).state == KeyState::kReady);
  }
}

TEST_CASE("Every key switch is one info line naming both keys", "[unit][keypool][failover]") {
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  logger->set_pattern("%v");
  logger->set_level(spdlog::level::info);
  spdlog::set_default_logger(logger);

  FakeClock clock;
  KeyPool pool("openai", Keys(OpenAiSecrets(3)), FailoverPolicy{}, clock);
  Script script;
  script.Queue("openai#1", WithRetry(Out(Outcome::kRateLimited, 429), clock.NowMs() + 20000));
  script.Queue("openai#2", Out(Outcome::kAuthError, 401));
  RunCall({{&pool, script.Fn()}}, CallOptions{}, clock);
  spdlog::set_default_logger(previous);

  CHECK(log.str() ==
        "openai: openai#1 sk-proj-…9f3a rate_limited (429, retry in 20s) → openai#2 sk-proj-…c3d4\n"
        "openai: openai#2 sk-proj-…c3d4 auth_error (401, disabled) → openai#3 sk-proj-…ab12\n");
  for (const auto& s : OpenAiSecrets(3)) CHECK(log.str().find(s) == std::string::npos);
}

}  // namespace
}  // namespace kpm::keypool
