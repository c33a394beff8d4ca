#include "keypool/failover.h"

#include <algorithm>
#include <exception>
#include <new>
#include <random>
#include <utility>

#include <spdlog/spdlog.h>

namespace kpm::keypool {
namespace {

/// Uniform in [0.5, 1.5] x backoff_ms (SPEC §2), so concurrent calls spread out.
int64_t JitteredBackoff(int64_t backoff_ms) {
  if (backoff_ms <= 0) return 0;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<int64_t> dist(backoff_ms / 2, backoff_ms + backoff_ms / 2);
  return dist(rng);
}

/// "(429, retry in 20s)", "(401, disabled)", "(503)" or "".
std::string SwitchDetail(const AttemptOutcome& out, const KeySnapshot& after) {
  std::vector<std::string> parts;
  if (out.status > 0) parts.push_back(std::to_string(out.status));
  if (after.state == KeyState::kDisabled) {
    parts.push_back("disabled");
  } else if (after.state == KeyState::kCoolingDown && after.ready_in_ms) {
    parts.push_back("retry in " + FormatDurationMs(*after.ready_in_ms));
  }
  if (parts.empty()) return "";
  std::string text = " (" + parts[0];
  for (size_t i = 1; i < parts.size(); ++i) text += ", " + parts[i];
  return text + ")";
}

/// Failures that say more about the endpoint (the server behind a baseUrl) than the key.
bool EndpointFailure(Outcome o) {
  return o == Outcome::kServerError || o == Outcome::kNetworkError || o == Outcome::kTimeout;
}

/// Runs one attempt; an exception that escapes it becomes a server_error (the lease is
/// then reported by the loop like any other outcome, and the call fails over).
Attempt<std::any> RunAttempt(const detail::PayloadStep& step, const KeyLease& key, int64_t deadline) {
  Attempt<std::any> attempt;
  AttemptOutcome& out = attempt.outcome;
  try {
    return step.attempt(key, deadline);
  } catch (const std::bad_alloc&) {
    out.message = "internal error: out of memory";
  } catch (const std::exception& e) {
    out.message = std::string("internal error: ") + e.what();
  } catch (...) {
    out.message = "internal error: unknown exception";
  }
  out.outcome = Outcome::kServerError;
  spdlog::error("{}: attempt with {} failed: {}", key.provider, key.Display(), out.message);
  return attempt;
}

/// The key the previous attempt left, waiting to be named in the switch log line.
struct PendingSwitch {
  std::string key_display;
  std::string label;
  Outcome outcome = Outcome::kOk;
  std::string detail;
};

/// How one provider's part of the call ended.
struct PoolEnd {
  enum class Kind {
    kFinal,  ///< the call is decided: answer, bad request, cancel, deadline
    kDone,   ///< this provider is done for the call: try the next one
  } kind = Kind::kFinal;
  /// kDone: what the call returns if no provider is left. kServerError and
  /// kContextTooLong carry the upstream's message; anything else is exhaustion.
  Outcome outcome = Outcome::kOk;
  std::string message;
  std::string why;  ///< kDone: for the log and progress, e.g. "server errors (503) on 2 attempts"
};

/// Per endpoint of the provider, what this call has seen of it.
struct EndpointSeen {
  int failures = 0;         ///< 5xx, network errors and timeouts of any key on it
  bool server_error = false;
  bool down = false;        ///< a network error or timeout: unreachable or silent
  Outcome down_class = Outcome::kOk;
};

class CallRun {
 public:
  CallRun(const CallOptions& options, Clock& clock, int64_t deadline, std::any* payload)
      : options_(options), clock_(clock), deadline_(deadline), payload_(payload) {}

  /// Walks one provider's keys. `fallback_left`: another provider follows in the chain,
  /// so a silent or unreachable endpoint is not waited on twice.
  PoolEnd RunPool(const detail::PayloadStep& step, bool fallback_left, CallResult& result);

  bool Cancelled() const { return options_.cancel && options_.cancel->cancelled(); }
  void Emit(FailoverEvent::Kind kind, const std::string& provider, std::string text) const {
    if (options_.on_event) options_.on_event(FailoverEvent{kind, provider, std::move(text)});
  }
  /// The class and message of the last failed attempt, for exhaustion and deadlines.
  std::optional<Outcome> last_failure;
  std::string last_message;

 private:
  std::optional<KeyLease> NextKey(KeyPool& pool, size_t start, const std::vector<bool>& tried,
                                  const std::vector<size_t>& server_error_keys, const std::vector<EndpointSeen>& seen,
                                  bool fallback_left) const;
  void LogSwitch(const KeyPool& pool, PendingSwitch& pending, const std::string& next_display,
                 const std::string& next_label);
  bool MaybeWait(KeyPool& pool, int64_t* waited_ms);

  const CallOptions& options_;
  Clock& clock_;
  const int64_t deadline_;
  std::any* payload_;  // where the answering attempt's payload goes
};

void CallRun::LogSwitch(const KeyPool& pool, PendingSwitch& pending, const std::string& next_display,
                        const std::string& next_label) {
  spdlog::info("{}: {} {}{} \xE2\x86\x92 {}", pool.provider(), pending.key_display, OutcomeName(pending.outcome),
               pending.detail, next_display);
  Emit(FailoverEvent::Kind::kSwitch, pool.provider(),
       pending.label + " " + std::string(OutcomeName(pending.outcome)) + ", trying " + next_label);
}

/// With maxWaitMs, waits for the earliest cooling (or busy) key when it is back within
/// the budget and the deadline. Returns true if it waited (not cancelled).
bool CallRun::MaybeWait(KeyPool& pool, int64_t* waited_ms) {
  const FailoverPolicy& policy = pool.policy();
  if (policy.max_wait_ms <= 0) return false;
  std::optional<int64_t> next = pool.NextAvailableMs();
  const int64_t now = clock_.NowMs();
  if (!next || *next > deadline_) return false;
  const int64_t wait = std::max<int64_t>(*next - now, 1);
  if (*waited_ms + wait > policy.max_wait_ms) return false;
  Emit(FailoverEvent::Kind::kWait, pool.provider(),
       "all " + pool.provider() + " keys are cooling; waiting " + FormatDurationMs(wait));
  spdlog::info("{}: every key is cooling; waiting {} for the first one back", pool.provider(),
               FormatDurationMs(wait));
  if (!clock_.SleepFor(wait, options_.cancel)) return false;
  *waited_ms += wait;
  return true;
}

/// The next key to try, in SPEC §3's order of preference: an untried key on an endpoint
/// that has not failed in this call; then one on an endpoint that answered 5xx; then —
/// only when no fallback provider is left — one on an endpoint that was unreachable or
/// silent; last, a key that answered 5xx, again (a transient error may pass).
std::optional<KeyLease> CallRun::NextKey(KeyPool& pool, size_t start, const std::vector<bool>& tried,
                                         const std::vector<size_t>& server_error_keys,
                                         const std::vector<EndpointSeen>& seen, bool fallback_left) const {
  auto pass = [&](auto allowed) {
    std::vector<bool> exclude(pool.size());
    for (size_t i = 0; i < pool.size(); ++i) exclude[i] = !allowed(i);
    return pool.Acquire(start, exclude);
  };
  auto at = [&](size_t i) -> const EndpointSeen& { return seen[pool.endpoint(i)]; };
  if (auto k = pass([&](size_t i) { return !tried[i] && !at(i).down && !at(i).server_error; })) return k;
  if (auto k = pass([&](size_t i) { return !tried[i] && !at(i).down; })) return k;
  if (!fallback_left) {
    if (auto k = pass([&](size_t i) { return !tried[i]; })) return k;
  }
  return pass([&](size_t i) {
    return !at(i).down && std::find(server_error_keys.begin(), server_error_keys.end(), i) != server_error_keys.end();
  });
}

PoolEnd CallRun::RunPool(const detail::PayloadStep& step, bool fallback_left, CallResult& result) {
  KeyPool& pool = *step.pool;
  const FailoverPolicy& policy = pool.policy();
  result.provider = pool.provider();
  std::vector<bool> tried(pool.size(), false);
  std::vector<EndpointSeen> seen(pool.endpoint_count());
  std::vector<size_t> server_error_keys;  // distinct keys that answered 5xx in this call
  int server_errors = 0;                  // per provider (SPEC §3)
  int last_server_status = 0;
  const size_t start = pool.NextStart();
  int64_t waited_ms = 0;
  std::optional<PendingSwitch> pending;
  PoolEnd final_end;

  while (true) {
    if (Cancelled()) {
      result.outcome = Outcome::kCancelled;
      result.message = "cancelled by the caller";
      return final_end;
    }
    if (clock_.NowMs() >= deadline_) {
      result.outcome = Outcome::kTimeout;
      result.message = "the call deadline passed after " + std::to_string(result.attempts.size()) + " attempt(s)";
      if (last_failure) result.message += "; last: " + std::string(OutcomeName(*last_failure)) + ": " + last_message;
      return final_end;
    }
    std::optional<KeyLease> lease = NextKey(pool, start, tried, server_error_keys, seen, fallback_left);
    if (!lease) {
      if (MaybeWait(pool, &waited_ms)) {
        std::fill(tried.begin(), tried.end(), false);
        continue;
      }
      if (Cancelled()) continue;  // reported at the top of the loop
      PoolEnd done{PoolEnd::Kind::kDone, Outcome::kOk, "", "no key left"};
      const bool all_down = std::all_of(seen.begin(), seen.end(), [](const EndpointSeen& e) { return e.down; });
      if (all_down && !seen.empty()) {
        done.why = seen.size() > 1 ? "every endpoint failed" : "its endpoint failed";
        done.why += seen[0].down_class == Outcome::kTimeout ? " (silent: timeout)" : " (unreachable: network_error)";
      }
      if (pending) {
        spdlog::info("{}: {} {}{} \xE2\x86\x92 {}", pool.provider(), pending->key_display,
                     OutcomeName(pending->outcome), pending->detail, done.why);
      }
      return done;
    }
    if (pending) {
      LogSwitch(pool, *pending, lease->Display(), lease->label);
      pending.reset();
    }

    const int64_t t0 = clock_.NowMs();
    Attempt<std::any> attempt = RunAttempt(step, *lease, deadline_);
    AttemptOutcome& out = attempt.outcome;
    const int64_t elapsed = clock_.NowMs() - t0;
    // An attempt aborted by the caller's cancellation is not the key's fault.
    if (out.outcome != Outcome::kOk && Cancelled()) out.outcome = Outcome::kCancelled;
    out.message = pool.Scrub(out.message);
    EndpointSeen& endpoint = seen[pool.endpoint(lease->index)];
    Fault fault = Fault::kKey;
    if (EndpointFailure(out.outcome) && endpoint.failures++ > 0) fault = Fault::kEndpoint;
    KeySnapshot after = pool.Report(*lease, out, fault);
    result.attempts.push_back(
        AttemptRecord{pool.provider(), lease->Display(), out.outcome, out.status, out.message, elapsed});
    tried[lease->index] = true;
    spdlog::debug("{}: {} {} {} in {} ms", pool.provider(), lease->Display(), OutcomeName(out.outcome), out.status,
                  elapsed);

    switch (out.outcome) {
      case Outcome::kOk:
        // SPEC §3: a key that alone failed with 5xx while another key of its endpoint
        // answered earns a strike; a 5xx repeated on a second key is the endpoint's.
        if (server_error_keys.size() == 1 && server_error_keys[0] != lease->index &&
            pool.endpoint(server_error_keys[0]) == pool.endpoint(lease->index)) {
          pool.RecordServerErrorStrike(server_error_keys[0], last_server_status);
        }
        result.outcome = Outcome::kOk;
        result.key = std::move(*lease);
        *payload_ = std::move(attempt.value);
        result.message.clear();
        return final_end;
      case Outcome::kBadRequest:
      case Outcome::kCancelled:
        result.outcome = out.outcome;
        result.message = out.message;
        return final_end;
      case Outcome::kContextTooLong:
        last_failure = out.outcome;
        last_message = out.message;
        return PoolEnd{PoolEnd::Kind::kDone, out.outcome, out.message, "context too long"};
      case Outcome::kServerError: {
        last_failure = out.outcome;
        last_message = out.message;
        last_server_status = out.status;
        endpoint.server_error = true;
        if (std::find(server_error_keys.begin(), server_error_keys.end(), lease->index) == server_error_keys.end()) {
          server_error_keys.push_back(lease->index);
        }
        if (++server_errors > policy.server_error_retries) {
          std::string why = "server errors";
          if (out.status > 0) why += " (" + std::to_string(out.status) + ")";
          why += " on " + std::to_string(server_errors) + " attempt(s)";
          spdlog::info("{}: {} {}{} \xE2\x86\x92 {}", pool.provider(), lease->Display(), OutcomeName(out.outcome),
                       SwitchDetail(out, after), why);
          return PoolEnd{PoolEnd::Kind::kDone, out.outcome,
                         out.message.empty() ? "upstream server error" : out.message, why};
        }
        int64_t backoff = std::min(JitteredBackoff(policy.backoff_ms), deadline_ - clock_.NowMs());
        if (backoff > 0 && !clock_.SleepFor(backoff, options_.cancel)) continue;  // cancelled
        break;
      }
      case Outcome::kNetworkError:
      case Outcome::kTimeout:
        last_failure = out.outcome;
        last_message = out.message;
        endpoint.down = true;
        endpoint.down_class = out.outcome;
        break;
      default:  // rate_limited, quota_exhausted, auth_error: the key's own state
        last_failure = out.outcome;
        last_message = out.message;
        break;
    }
    pending = PendingSwitch{lease->Display(), lease->label, out.outcome, SwitchDetail(out, after)};
  }
}

/// When no attempt was made at all (every key already cooling or disabled), the
/// class of the key that comes back first, else of the first disabled key.
Outcome ClassFromKeys(const std::vector<PoolSnapshot>& pools) {
  std::optional<int64_t> best_ready;
  std::optional<Outcome> best;
  std::optional<Outcome> first_disabled;
  for (const PoolSnapshot& p : pools) {
    for (const KeySnapshot& k : p.keys) {
      if (k.state == KeyState::kCoolingDown && k.ready_in_ms && (!best_ready || *k.ready_in_ms < *best_ready)) {
        best_ready = k.ready_in_ms;
        best = k.cause;
      } else if (k.state == KeyState::kDisabled && !first_disabled) {
        first_disabled = k.cause;
      }
    }
  }
  Outcome o = best.value_or(first_disabled.value_or(Outcome::kRateLimited));
  return o == Outcome::kOk ? Outcome::kRateLimited : o;
}

}  // namespace

std::string DescribeExhaustion(const std::vector<PoolSnapshot>& pools) {
  std::string names;
  for (const PoolSnapshot& p : pools) names += (names.empty() ? "" : ", then ") + p.provider;
  std::string text = "no usable key left (" + names + "):";
  for (const PoolSnapshot& p : pools) {
    for (const KeySnapshot& k : p.keys) {
      text += "\n  " + p.provider + ": " + k.label + " " + k.fingerprint + ": " + std::string(KeyStateName(k.state));
      if (!k.reason.empty()) text += ", " + k.reason;
      if (k.state == KeyState::kCoolingDown && k.ready_in_ms) text += ", ready in " + FormatDurationMs(*k.ready_in_ms);
      if (k.state == KeyState::kReady && k.in_flight > 0) {
        text += ", busy (" + std::to_string(k.in_flight) + " in flight)";
      }
    }
  }
  return text;
}

CallResult RunCall(const std::vector<ChainStep>& chain, const CallOptions& options, Clock& clock) {
  std::vector<detail::PayloadStep> steps;
  for (const ChainStep& s : chain) {
    if (!s.attempt) continue;
    steps.push_back({s.pool, [&s](const KeyLease& key, int64_t deadline) {
                       return Attempt<std::any>{s.attempt(key, deadline), {}};
                     }});
  }
  std::any unused;
  return detail::RunCall(steps, options, clock, &unused);
}

CallResult detail::RunCall(const std::vector<PayloadStep>& chain, const CallOptions& options, Clock& clock,
                           std::any* payload) {
  CallResult result;
  std::vector<const PayloadStep*> steps;
  for (const PayloadStep& s : chain) {
    if (s.pool != nullptr && s.attempt) steps.push_back(&s);
  }
  if (steps.empty()) {
    result.outcome = Outcome::kBadRequest;
    result.message = "no provider to call";
    return result;
  }
  // Counted from the call's arrival: time spent queued behind other calls is part of it.
  const int64_t arrived = options.arrived_ms > 0 ? options.arrived_ms : clock.NowMs();
  const int64_t deadline = arrived + steps[0]->pool->policy().deadline_ms;
  CallRun run(options, clock, deadline, payload);
  PoolEnd end;
  size_t used = 0;
  for (; used < steps.size(); ++used) {
    const KeyPool& pool = *steps[used]->pool;
    if (used > 0) {
      const std::string& from = steps[used - 1]->pool->provider();
      spdlog::info("{}: {} \xE2\x86\x92 falling back to {}", from, end.why, pool.provider());
      run.Emit(FailoverEvent::Kind::kFallback, pool.provider(),
               from + " " + end.why + ", falling back to " + pool.provider());
    }
    end = run.RunPool(*steps[used], used + 1 < steps.size(), result);
    if (end.kind == PoolEnd::Kind::kFinal) {
      ++used;
      break;
    }
  }
  for (size_t i = 0; i < used && i < steps.size(); ++i) result.pools.push_back(steps[i]->pool->Snapshot());
  if (end.kind == PoolEnd::Kind::kDone) {
    if (end.outcome == Outcome::kServerError || end.outcome == Outcome::kContextTooLong) {
      // The last provider's own words: what a person can act on.
      result.outcome = end.outcome;
      result.message = end.message;
    } else {
      result.outcome = run.last_failure.value_or(ClassFromKeys(result.pools));
      result.message = DescribeExhaustion(result.pools);
    }
  }
  if (result.outcome != Outcome::kOk && result.message.empty()) {
    // An upstream that said nothing still gets a readable failure.
    result.message = "upstream answered " + std::string(OutcomeName(result.outcome));
    if (!result.attempts.empty() && result.attempts.back().status > 0) {
      result.message += " (" + std::to_string(result.attempts.back().status) + ")";
    }
  }
  return result;
}

}  // namespace kpm::keypool
