#include "keypool/failover.h"

#include <algorithm>
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

/// The key the previous attempt left, waiting to be named in the switch log line.
struct PendingSwitch {
  std::string key_display;
  std::string label;
  Outcome outcome = Outcome::kOk;
  std::string detail;
};

enum class PoolEnd {
  kFinal,        ///< the call is decided (answer, bad request, cancel, deadline, 5xx budget)
  kExhausted,    ///< no key of this pool is left: try the next pool
  kNextProvider, ///< context_too_long: this provider cannot take it, try the next pool
};

class CallRun {
 public:
  CallRun(const CallOptions& options, Clock& clock, int64_t deadline)
      : options_(options), clock_(clock), deadline_(deadline) {}

  PoolEnd RunPool(const PoolAttempt& step, CallResult& result);

  bool Cancelled() const { return options_.cancel && options_.cancel->cancelled(); }
  void Emit(FailoverEvent::Kind kind, const std::string& provider, std::string text) const {
    if (options_.on_event) options_.on_event(FailoverEvent{kind, provider, std::move(text)});
  }
  std::optional<Outcome> last_failure;
  std::string last_message;

 private:
  void LogSwitch(const KeyPool& pool, PendingSwitch& pending, const std::string& next_display,
                 const std::string& next_label);
  bool MaybeWait(KeyPool& pool, int64_t* waited_ms);

  const CallOptions& options_;
  Clock& clock_;
  const int64_t deadline_;
  int server_errors_ = 0;  // per call (SPEC §3), across providers
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

PoolEnd CallRun::RunPool(const PoolAttempt& step, CallResult& result) {
  KeyPool& pool = *step.pool;
  const FailoverPolicy& policy = pool.policy();
  result.provider = pool.provider();
  std::vector<bool> tried(pool.size(), false);
  std::vector<size_t> server_error_keys;  // distinct keys that answered 5xx in this call
  int last_server_status = 0;
  const size_t start = pool.NextStart();
  int64_t waited_ms = 0;
  std::optional<PendingSwitch> pending;

  while (true) {
    if (Cancelled()) {
      result.outcome = Outcome::kCancelled;
      result.message = "cancelled by the caller";
      return PoolEnd::kFinal;
    }
    if (clock_.NowMs() >= deadline_) {
      result.outcome = Outcome::kTimeout;
      result.message = "the call deadline passed after " + std::to_string(result.attempts.size()) + " attempt(s)";
      if (last_failure) result.message += "; last: " + std::string(OutcomeName(*last_failure)) + ": " + last_message;
      return PoolEnd::kFinal;
    }
    std::optional<KeyLease> lease = pool.Acquire(start, tried);
    if (!lease && !server_error_keys.empty()) {
      // A transient 5xx may be retried on the same key when no other is left.
      std::vector<bool> again = tried;
      for (size_t k : server_error_keys) again[k] = false;
      lease = pool.Acquire(start, again);
    }
    if (!lease) {
      if (MaybeWait(pool, &waited_ms)) {
        std::fill(tried.begin(), tried.end(), false);
        continue;
      }
      if (Cancelled()) continue;  // reported at the top of the loop
      if (pending) {
        spdlog::info("{}: {} {}{} \xE2\x86\x92 no key left", pool.provider(), pending->key_display,
                     OutcomeName(pending->outcome), pending->detail);
      }
      return PoolEnd::kExhausted;
    }
    if (pending) {
      LogSwitch(pool, *pending, lease->Display(), lease->label);
      pending.reset();
    }

    const int64_t t0 = clock_.NowMs();
    AttemptOutcome out = step.attempt(*lease, deadline_);
    const int64_t elapsed = clock_.NowMs() - t0;
    // An attempt aborted by the caller's cancellation is not the key's fault.
    if (out.outcome != Outcome::kOk && Cancelled()) out.outcome = Outcome::kCancelled;
    out.message = pool.Scrub(out.message);
    KeySnapshot after = pool.Report(*lease, out);
    result.attempts.push_back(
        AttemptRecord{pool.provider(), lease->Display(), out.outcome, out.status, out.message, elapsed});
    tried[lease->index] = true;
    spdlog::debug("{}: {} {} {} in {} ms", pool.provider(), lease->Display(), OutcomeName(out.outcome), out.status,
                  elapsed);

    switch (out.outcome) {
      case Outcome::kOk:
        // SPEC §3: a key that alone failed with 5xx while another key answered earns a
        // strike; a 5xx repeated on a second key is the provider's, not a key's.
        if (server_error_keys.size() == 1 && server_error_keys[0] != lease->index) {
          pool.RecordServerErrorStrike(server_error_keys[0], last_server_status);
        }
        result.outcome = Outcome::kOk;
        result.key = std::move(*lease);
        result.message.clear();
        return PoolEnd::kFinal;
      case Outcome::kBadRequest:
      case Outcome::kCancelled:
        result.outcome = out.outcome;
        result.message = out.message;
        return PoolEnd::kFinal;
      case Outcome::kContextTooLong:
        last_failure = out.outcome;
        last_message = out.message;
        return PoolEnd::kNextProvider;
      case Outcome::kServerError: {
        last_failure = out.outcome;
        last_message = out.message;
        last_server_status = out.status;
        if (std::find(server_error_keys.begin(), server_error_keys.end(), lease->index) == server_error_keys.end()) {
          server_error_keys.push_back(lease->index);
        }
        if (++server_errors_ > policy.server_error_retries) {
          result.outcome = Outcome::kServerError;
          result.message = out.message.empty() ? "upstream server error" : out.message;
          return PoolEnd::kFinal;
        }
        int64_t backoff = std::min(JitteredBackoff(policy.backoff_ms), deadline_ - clock_.NowMs());
        if (backoff > 0 && !clock_.SleepFor(backoff, options_.cancel)) continue;  // cancelled
        break;
      }
      default:  // rate_limited, quota_exhausted, auth_error, network_error, timeout
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

namespace {

CallResult RunChain(const std::vector<PoolAttempt>& chain, const CallOptions& options, Clock& clock) {
  CallResult result;
  if (chain.empty() || chain[0].pool == nullptr) {
    result.outcome = Outcome::kBadRequest;
    result.message = "no provider to call";
    return result;
  }
  const int64_t deadline = clock.NowMs() + chain[0].pool->policy().deadline_ms;
  CallRun run(options, clock, deadline);
  std::vector<const KeyPool*> tried;
  PoolEnd end = PoolEnd::kExhausted;
  for (size_t p = 0; p < chain.size(); ++p) {
    const PoolAttempt& step = chain[p];
    if (step.pool == nullptr || !step.attempt) continue;
    if (!tried.empty()) {
      const std::string& from = tried.back()->provider();
      const char* why = end == PoolEnd::kNextProvider ? "context too long" : "no key left";
      spdlog::info("{}: {} \xE2\x86\x92 falling back to {}", from, why, step.pool->provider());
      run.Emit(FailoverEvent::Kind::kFallback, step.pool->provider(),
               from + " " + why + ", falling back to " + step.pool->provider());
    }
    tried.push_back(step.pool);
    end = run.RunPool(step, result);
    if (end == PoolEnd::kFinal) break;
  }
  for (const KeyPool* pool : tried) result.pools.push_back(pool->Snapshot());
  if (end == PoolEnd::kFinal) return result;

  if (end == PoolEnd::kNextProvider) {
    // context_too_long with no fallback left: the upstream's own words.
    result.outcome = Outcome::kContextTooLong;
    result.message = run.last_message;
    return result;
  }
  result.outcome = run.last_failure.value_or(ClassFromKeys(result.pools));
  result.message = DescribeExhaustion(result.pools);
  return result;
}

}  // namespace

CallResult RunCall(const std::vector<PoolAttempt>& chain, const CallOptions& options, Clock& clock) {
  CallResult result = RunChain(chain, options, clock);
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
