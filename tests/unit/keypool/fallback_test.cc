// The failover loop's provider-level decisions (SPEC §3 "Fallback", issue #8): a
// provider is done on every way it can be, endpoints are first-class, and an attempt
// that throws or forgets its lease never strands a key (issue #7).
#include <catch2/catch.hpp>

#include <stdexcept>

#include "keypool/failover.h"
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

std::vector<KeySpec> OnEndpoints(const std::vector<std::string>& urls, const std::string& provider = "openai") {
  std::vector<KeySpec> keys = Keys(OpenAiSecrets(urls.size()), provider);
  for (size_t i = 0; i < urls.size(); ++i) keys[i].base_url = urls[i];
  return keys;
}

TEST_CASE("503 on every primary key falls back after the primary's budget, changing no primary key",
          "[unit][keypool][fallback]") {
  FakeClock clock;
  KeyPool openai("openai", Keys(OpenAiSecrets(3)), FailoverPolicy{}, clock);
  KeyPool openrouter("openrouter", Keys({"sk-or-v1-AAAAbbbbCCCCdddd0001"}, "openrouter"), FailoverPolicy{}, clock);
  Script script;
  for (auto label : {"openai#1", "openai#2", "openai#3"}) script.Always(label, Out(Outcome::kServerError, 503));
  std::vector<FailoverEvent> events;
  CallOptions options;
  options.on_event = [&](const FailoverEvent& e) { events.push_back(e); };
  CallResult r = RunCall({{&openai, script.Fn()}, {&openrouter, script.Fn()}}, options, clock);
  CHECK(r.outcome == Outcome::kOk);
  CHECK(r.provider == "openrouter");
  CHECK(Summary(r.attempts) == Strings{"openai#1 server_error", "openai#2 server_error", "openrouter#1 ok"});
  for (const auto& k : openai.Snapshot().keys) CHECK(k.state == KeyState::kReady);
  REQUIRE(!events.empty());
  CHECK(events.back().kind == FailoverEvent::Kind::kFallback);
  CHECK(events.back().text == "openai server errors (503) on 2 attempt(s), falling back to openrouter");
}

TEST_CASE("The server-error budget is counted per provider", "[unit][keypool][fallback]") {
  FakeClock clock;
  FailoverPolicy policy;
  policy.server_error_retries = 1;
  KeyPool primary("openai", Keys(OpenAiSecrets(2)), policy, clock);
  KeyPool fallback("openrouter", Keys({"sk-or-v1-AAAAbbbbCCCCdddd0001"}, "openrouter"), policy, clock);
  Script script;
  script.Always("openai#1", Out(Outcome::kServerError, 500));
  script.Always("openai#2", Out(Outcome::kServerError, 500));
  script.Queue("openrouter#1", Out(Outcome::kServerError, 502));  // then ok
  CallResult r = RunCall({{&primary, script.Fn()}, {&fallback, script.Fn()}}, CallOptions{}, clock);
  CHECK(r.outcome == Outcome::kOk);
  CHECK(Summary(r.attempts) ==
        Strings{"openai#1 server_error", "openai#2 server_error", "openrouter#1 server_error", "openrouter#1 ok"});
}

TEST_CASE("A silent endpoint is not waited on twice when a fallback is left", "[unit][keypool][fallback]") {
  FakeClock clock;
  KeyPool openai("openai", Keys(OpenAiSecrets(2)), FailoverPolicy{}, clock);
  KeyPool openrouter("openrouter", Keys({"sk-or-v1-AAAAbbbbCCCCdddd0001"}, "openrouter"), FailoverPolicy{}, clock);
  Script script;
  script.Always("openai#1", Out(Outcome::kTimeout, 0, "timeout: no response headers within 200 ms"));
  script.Always("openai#2", Out(Outcome::kTimeout, 0, "timeout: no response headers within 200 ms"));

  SECTION("with a fallback: one timeout, then the fallback; the second key is never tried") {
    CallResult r = RunCall({{&openai, script.Fn()}, {&openrouter, script.Fn()}}, CallOptions{}, clock);
    CHECK(r.outcome == Outcome::kOk);
    CHECK(Summary(r.attempts) == Strings{"openai#1 timeout", "openrouter#1 ok"});
  }
  SECTION("without one: the next key of the same endpoint, whose timeout changes no state") {
    CallResult r = RunCall({{&openai, script.Fn()}}, CallOptions{}, clock);
    CHECK(r.outcome == Outcome::kTimeout);
    CHECK(Summary(r.attempts) == Strings{"openai#1 timeout", "openai#2 timeout"});
    CHECK(openai.SnapshotKey(0).state == KeyState::kCoolingDown);
    CHECK(openai.SnapshotKey(1).state == KeyState::kReady);  // the endpoint's fault, not the key's
    CHECK(openai.SnapshotKey(1).failures == 1);              // counted all the same
  }
}

TEST_CASE("An unreachable provider falls back with the reason", "[unit][keypool][fallback]") {
  FakeClock clock;
  KeyPool openai("openai", Keys(OpenAiSecrets(3)), FailoverPolicy{}, clock);
  KeyPool openrouter("openrouter", Keys({"sk-or-v1-AAAAbbbbCCCCdddd0001"}, "openrouter"), FailoverPolicy{}, clock);
  Script script;
  for (auto label : {"openai#1", "openai#2", "openai#3"}) script.Always(label, Out(Outcome::kNetworkError, 0));
  std::vector<std::string> texts;
  CallOptions options;
  options.on_event = [&](const FailoverEvent& e) { texts.push_back(e.text); };
  CallResult r = RunCall({{&openai, script.Fn()}, {&openrouter, script.Fn()}}, options, clock);
  CHECK(r.outcome == Outcome::kOk);
  CHECK(Summary(r.attempts) == Strings{"openai#1 network_error", "openrouter#1 ok"});
  CHECK(texts.back() == "openai its endpoint failed (unreachable: network_error), falling back to openrouter");
}

TEST_CASE("After a 5xx the next key tried is one on another endpoint", "[unit][keypool][fallback]") {
  FakeClock clock;
  // Sequential order would try a#2 (same endpoint as a#1) next; the other endpoint goes first.
  KeyPool pool("openai", OnEndpoints({"https://a.example/v1", "https://a.example/v1", "https://b.example/v1"}),
               FailoverPolicy{}, clock);
  REQUIRE(pool.endpoint_count() == 2);
  Script script;
  script.Queue("openai#1", Out(Outcome::kServerError, 502));
  CallResult r = RunCall({{&pool, script.Fn()}}, CallOptions{}, clock);
  CHECK(r.outcome == Outcome::kOk);
  CHECK(Summary(r.attempts) == Strings{"openai#1 server_error", "openai#3 ok"});
  CHECK(r.key->base_url == "https://b.example/v1");
}

TEST_CASE("A timeout moves to another endpoint before the next key of the silent one",
          "[unit][keypool][fallback]") {
  FakeClock clock;
  KeyPool pool("openai", OnEndpoints({"https://a.example/v1", "https://a.example/v1", "https://b.example/v1"}),
               FailoverPolicy{}, clock);
  Script script;
  script.Always("openai#1", Out(Outcome::kTimeout, 0));
  script.Always("openai#3", Out(Outcome::kTimeout, 0));
  CallResult r = RunCall({{&pool, script.Fn()}}, CallOptions{}, clock);
  // Both endpoints silent and no fallback: only then the next key of a silent endpoint.
  CHECK(Summary(r.attempts) == Strings{"openai#1 timeout", "openai#3 timeout", "openai#2 ok"});
  CHECK(r.outcome == Outcome::kOk);
}

TEST_CASE("context_too_long falls back, and a provider without keys left does too", "[unit][keypool][fallback]") {
  FakeClock clock;
  KeyPool openai("openai", Keys(OpenAiSecrets(2)), FailoverPolicy{}, clock);
  KeyPool openrouter("openrouter", Keys({"sk-or-v1-AAAAbbbbCCCCdddd0001"}, "openrouter"), FailoverPolicy{}, clock);
  Script script;
  script.Queue("openai#1", Out(Outcome::kContextTooLong, 400, "maximum context length is 8192 tokens"));
  CallResult r = RunCall({{&openai, script.Fn()}, {&openrouter, script.Fn()}}, CallOptions{}, clock);
  CHECK(Summary(r.attempts) == Strings{"openai#1 context_too_long", "openrouter#1 ok"});

  SECTION("with no fallback answering, the last provider's words are returned") {
    script.Queue("openai#1", Out(Outcome::kContextTooLong, 400, "maximum context length is 8192 tokens"));
    script.Always("openrouter#1", Out(Outcome::kContextTooLong, 400, "too long for this model too"));
    CallResult r2 = RunCall({{&openai, script.Fn()}, {&openrouter, script.Fn()}}, CallOptions{}, clock);
    CHECK(r2.outcome == Outcome::kContextTooLong);
    CHECK(r2.message == "too long for this model too");
  }
}

TEST_CASE("An attempt that throws fails over and leaves its key usable", "[unit][keypool][lease]") {
  FakeClock clock;
  KeyPool pool("gemini", Keys(OpenAiSecrets(1), "gemini"), FailoverPolicy{}, clock);
  KeyPool other("openrouter", Keys({"sk-or-v1-AAAAbbbbCCCCdddd0001"}, "openrouter"), FailoverPolicy{}, clock);
  int calls = 0;
  AttemptFn throwing = [&](const KeyLease&, int64_t) -> AttemptOutcome {
    if (calls++ == 0) throw std::runtime_error("[json.exception.type_error.302] type must be boolean, but is string");
    return Out(Outcome::kOk, 200);
  };
  Script script;
  CallResult r = RunCall({{&pool, throwing}, {&other, script.Fn()}}, CallOptions{}, clock);
  REQUIRE(r.attempts.size() >= 1);
  CHECK(r.attempts[0].outcome == Outcome::kServerError);
  CHECK(r.attempts[0].message.rfind("internal error: ", 0) == 0);
  CHECK(r.outcome == Outcome::kOk);
  KeySnapshot k = pool.SnapshotKey(0);
  CHECK(k.in_flight == 0);
  CHECK(k.state == KeyState::kReady);
  // The next call reaches the key again.
  CallResult again = RunCall({{&pool, throwing}}, CallOptions{}, clock);
  CHECK(Summary(again.attempts) == Strings{"gemini#1 ok"});
}

TEST_CASE("A lease dropped without a report goes back to the pool", "[unit][keypool][lease]") {
  FakeClock clock;
  KeyPool pool("openai", Keys(OpenAiSecrets(1)), FailoverPolicy{}, clock);
  {
    std::optional<KeyLease> lease = pool.Acquire(0);
    REQUIRE(lease);
    CHECK(lease->outstanding());
    CHECK(pool.SnapshotKey(0).in_flight == 1);
  }
  KeySnapshot k = pool.SnapshotKey(0);
  CHECK(k.in_flight == 0);
  CHECK(k.failures == 1);
  CHECK(k.last_error == "server_error: internal error: the attempt ended without an outcome");

  SECTION("a half-open trial is released too, so the key is not stuck as 'trial in flight'") {
    std::optional<KeyLease> first = pool.Acquire(0);
    AttemptOutcome limited = Out(Outcome::kRateLimited, 429);
    pool.Report(*first, limited);
    clock.Advance(1000);
    { std::optional<KeyLease> trial = pool.Acquire(0); REQUIRE(trial); CHECK(trial->trial); }
    clock.Advance(10000);  // past any cooldown the abandoned trial could have started
    CHECK(pool.Acquire(0));
  }
  SECTION("a reported lease is not reported again, and a moved one only once") {
    std::optional<KeyLease> lease = pool.Acquire(0);
    KeyLease moved = std::move(*lease);
    CHECK_FALSE(lease->outstanding());
    pool.Report(moved, Out(Outcome::kOk, 200));
    CHECK_FALSE(moved.outstanding());
    CHECK(pool.SnapshotKey(0).requests == 2);
  }
}

}  // namespace
}  // namespace kpm::keypool
