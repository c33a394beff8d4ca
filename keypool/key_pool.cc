#include "keypool/key_pool.h"

#include <algorithm>
#include <utility>

#include "common/strings.h"

namespace kpm::keypool {
namespace {

constexpr size_t kMaxReasonChars = 160;
/// How often a waiting call looks again at keys that are busy rather than cooling.
constexpr int64_t kBusyPollMs = 100;
/// Calls in a row in which a key alone answered 5xx before it is cooled.
constexpr int kServerErrorStrikesToCool = 2;

/// base << (streak - 1), capped, without overflow.
int64_t Doubled(int64_t base, int streak, int64_t cap) {
  int64_t v = std::max<int64_t>(base, 0);
  for (int i = 1; i < streak && v < cap; ++i) v *= 2;
  return std::min(v, cap);
}

/// The end of an error cooldown (network, timeout, repeated 5xx): errorCooldownMs,
/// doubled per cooldown in a row (`streak`), at most max(errorCooldownMs,
/// rateLimitCooldownMaxMs).
int64_t ErrorCooldownUntil(const FailoverPolicy& p, int streak, int64_t now) {
  const int64_t cap = std::max(p.error_cooldown_ms, p.rate_limit_cooldown_max_ms);
  return now + Doubled(p.error_cooldown_ms, std::max(streak, 1), cap);
}

bool CoolingNow(const KeyRecord& r, int64_t now) { return r.cooling && now < r.cooling_until_ms; }

/// Extends the cooldown to `until` (never shortens it). True if it grew.
bool Extend(KeyRecord& r, int64_t until, Outcome cause, std::string reason) {
  if (r.cooling && r.cooling_until_ms >= until) return false;
  r.cooling = true;
  r.cooling_until_ms = std::max(r.cooling_until_ms, until);
  r.cause = cause;
  r.reason = std::move(reason);
  return true;
}

std::string StatusText(const AttemptOutcome& o) {
  return o.status > 0 ? " (" + std::to_string(o.status) + ")" : "";
}

/// The reset time a `remaining: 0` figure points at, if it is still ahead.
std::optional<int64_t> ExhaustedUntil(const RateLimitInfo& l, int64_t now) {
  std::optional<int64_t> until;
  if (l.requests_remaining == 0 && l.requests_reset_at_ms && *l.requests_reset_at_ms > now) {
    until = *l.requests_reset_at_ms;
  }
  if (l.tokens_remaining == 0 && l.tokens_reset_at_ms && *l.tokens_reset_at_ms > now) {
    until = std::max(until.value_or(0), *l.tokens_reset_at_ms);
  }
  return until;
}

/// What a lease that was never reported counts as: the attempt broke, not the key.
AttemptOutcome AbandonedOutcome() {
  AttemptOutcome out;
  out.outcome = Outcome::kServerError;
  out.message = "internal error: the attempt ended without an outcome";
  return out;
}

/// SPEC §3: what one outcome does to the key's state (not its counters). Returns the
/// cooldown end when the class cools the whole account, else nullopt.
std::optional<int64_t> ApplyTransition(KeyRecord& r, const AttemptOutcome& o, const FailoverPolicy& p,
                                       int64_t now, const std::string& message) {
  // A signal that arrives while the key is already known to be cooling (concurrent
  // calls answering together) extends the cooldown but does not escalate it.
  const bool known_cooling = CoolingNow(r, now);
  std::optional<int64_t> account_until;
  switch (o.outcome) {
    case Outcome::kOk:
      r.rate_limit_streak = 0;
      r.error_streak = 0;
      r.server_error_strikes = 0;
      if (r.cooling && now >= r.cooling_until_ms) {
        r.cooling = false;
        r.reason.clear();
        r.cause = Outcome::kOk;
      }
      break;
    case Outcome::kRateLimited: {
      if (!known_cooling) ++r.rate_limit_streak;
      std::optional<int64_t> hint = o.limits.retry_at_ms;
      if (!hint) hint = ExhaustedUntil(o.limits, now);
      int64_t until = hint && *hint > now
                          ? *hint
                          : now + Doubled(p.rate_limit_cooldown_ms, std::max(r.rate_limit_streak, 1),
                                          p.rate_limit_cooldown_max_ms);
      Extend(r, until, o.outcome, "rate limited" + StatusText(o));
      account_until = r.cooling_until_ms;
      break;
    }
    case Outcome::kQuotaExhausted: {
      int64_t until = now + p.quota_cooldown_ms;
      if (o.limits.retry_at_ms) until = std::max(until, *o.limits.retry_at_ms);
      Extend(r, until, o.outcome, "quota exhausted");
      account_until = r.cooling_until_ms;
      break;
    }
    case Outcome::kAuthError:
      r.disabled = true;
      r.cause = o.outcome;
      r.reason = "auth error" + StatusText(o) + (message.empty() ? "" : ": " + message);
      break;
    case Outcome::kNetworkError:
    case Outcome::kTimeout: {
      if (!known_cooling) ++r.error_streak;
      const int64_t until = ErrorCooldownUntil(p, r.error_streak, now);
      std::string what = o.outcome == Outcome::kTimeout ? "timeout" : "network error";
      // Providers' messages already start with their class ("timeout: …").
      std::string reason = message.rfind(what, 0) == 0 ? message : what + (message.empty() ? "" : ": " + message);
      Extend(r, until, o.outcome, reason);
      break;
    }
    case Outcome::kServerError:  // decided per call by the failover loop
    case Outcome::kContextTooLong:
    case Outcome::kBadRequest:
    case Outcome::kCancelled:
      break;
  }
  if (auto until = ExhaustedUntil(o.limits, now)) {
    std::string which = o.limits.requests_remaining == 0 ? "requests" : "tokens";
    Extend(r, *until, r.cause == Outcome::kOk ? Outcome::kRateLimited : r.cause,
           which + " limit reached (remaining 0)");
  }
  return account_until;
}

}  // namespace

std::string_view KeyStateName(KeyState s) {
  switch (s) {
    case KeyState::kReady: return "ready";
    case KeyState::kCoolingDown: return "cooling_down";
    case KeyState::kDisabled: return "disabled";
  }
  return "unknown";
}

KeyLease& KeyLease::operator=(KeyLease&& other) noexcept {
  if (this == &other) return *this;
  if (pool_ != nullptr) pool_->Report(*this, AbandonedOutcome());
  provider = std::move(other.provider);
  index = other.index;
  secret = std::move(other.secret);
  label = std::move(other.label);
  fingerprint = std::move(other.fingerprint);
  base_url = std::move(other.base_url);
  trial = other.trial;
  pool_ = other.pool_;
  other.pool_ = nullptr;
  return *this;
}

KeyLease::~KeyLease() {
  if (pool_ != nullptr) pool_->Report(*this, AbandonedOutcome());
}

std::string FormatDurationMs(int64_t ms) {
  int64_t s = (std::max<int64_t>(ms, 0) + 999) / 1000;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m " + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h " + std::to_string(s % 3600 / 60) + "m";
}

KeyPool::KeyPool(std::string provider, std::vector<KeySpec> keys, FailoverPolicy policy, Clock& clock,
                 std::shared_ptr<KeyStateStore> store)
    : provider_(std::move(provider)),
      policy_(policy),
      clock_(clock),
      store_(store ? std::move(store) : std::make_shared<InMemoryKeyStateStore>()) {
  if (keys.empty()) keys.push_back(KeySpec{"", provider_, "", "", ""});
  for (size_t i = 0; i < keys.size(); ++i) {
    Key k;
    k.spec = std::move(keys[i]);
    if (k.spec.label.empty()) k.spec.label = provider_ + "#" + std::to_string(i + 1);
    k.fingerprint = Fingerprint(k.spec.secret);
    k.store_id = provider_ + "/" + std::to_string(i) + "/" + k.spec.label;
    k.endpoint = endpoint_count_;
    for (size_t j = 0; j < keys_.size(); ++j) {
      if (keys_[j].spec.base_url == k.spec.base_url) {
        k.endpoint = keys_[j].endpoint;
        break;
      }
    }
    if (k.endpoint == endpoint_count_) ++endpoint_count_;
    scrubber_.Add(k.spec.secret);
    keys_.push_back(std::move(k));
  }
}

size_t KeyPool::NextStart() {
  if (policy_.strategy != Strategy::kRoundRobin) return 0;
  return static_cast<size_t>(rr_cursor_.fetch_add(1, std::memory_order_relaxed) % keys_.size());
}

KeyLease KeyPool::MakeLease(size_t index, bool trial) const {
  const Key& k = keys_[index];
  KeyLease lease;
  lease.provider = provider_;
  lease.index = index;
  lease.secret = k.spec.secret;
  lease.label = k.spec.label;
  lease.fingerprint = k.fingerprint;
  lease.base_url = k.spec.base_url;
  lease.trial = trial;
  return lease;
}

bool KeyPool::Leasable(size_t index, const KeyRecord& r, int64_t now) const {
  if (!keys_[index].spec.disabled_reason.empty() || r.disabled) return false;
  if (CoolingNow(r, now)) return false;
  if (r.cooling && r.trial_in_flight) return false;  // half-open: one trial at a time
  if (policy_.max_in_flight > 0 && r.in_flight >= policy_.max_in_flight) return false;
  return true;
}

std::optional<KeyLease> KeyPool::Acquire(size_t start, const std::vector<bool>& exclude) {
  const size_t n = keys_.size();
  const int64_t now = clock_.NowMs();
  for (size_t step = 0; step < n; ++step) {
    size_t i = (start + step) % n;
    if (i < exclude.size() && exclude[i]) continue;
    bool leased = false;
    bool trial = false;
    store_->Update(keys_[i].store_id, [&](KeyRecord& r) {
      leased = false;
      trial = false;
      if (!Leasable(i, r, now)) return;
      leased = true;
      trial = r.cooling;  // the cooldown has ended: this lease is the trial
      if (trial) r.trial_in_flight = true;
      ++r.in_flight;
    });
    if (leased) {
      KeyLease lease = MakeLease(i, trial);
      lease.pool_ = this;
      return lease;
    }
  }
  return std::nullopt;
}

KeySnapshot KeyPool::Report(KeyLease& lease, const AttemptOutcome& outcome, Fault fault) {
  const size_t i = lease.index;
  if (lease.pool_ != this || i >= keys_.size()) return SnapshotKey(std::min(i, keys_.size() - 1));
  lease.pool_ = nullptr;
  const int64_t now = clock_.NowMs();
  const std::string message = TruncateUtf8(Scrub(outcome.message), kMaxReasonChars);
  std::optional<int64_t> account_until;
  KeyRecord after = store_->Update(keys_[i].store_id, [&](KeyRecord& r) {
    r.in_flight = std::max(0, r.in_flight - 1);
    if (lease.trial) r.trial_in_flight = false;
    ++r.requests;
    if (outcome.outcome == Outcome::kOk) {
      r.last_error.clear();
    } else if (outcome.outcome != Outcome::kCancelled) {
      ++r.failures;
      r.last_error = std::string(OutcomeName(outcome.outcome)) + (message.empty() ? "" : ": " + message);
    }
    if (outcome.status > 0) {
      r.last_status = outcome.status;
    } else if (outcome.outcome != Outcome::kCancelled) {
      r.last_status.reset();
    }
    r.last_used_ms = now;
    if (fault == Fault::kKey) account_until = ApplyTransition(r, outcome, policy_, now, message);
  });
  if (account_until) CoolAccount(i, *account_until, outcome.outcome);
  return ToSnapshot(i, after, now);
}

void KeyPool::CoolAccount(size_t index, int64_t until, Outcome cause) {
  const std::string& account = keys_[index].spec.account;
  if (account.empty()) return;
  std::string reason = "account " + account + " " + std::string(OutcomeName(cause)) + " (via " +
                       keys_[index].spec.label + ")";
  if (cause == Outcome::kQuotaExhausted) reason = "quota exhausted (account " + account + ", via " +
                                                  keys_[index].spec.label + ")";
  for (size_t j = 0; j < keys_.size(); ++j) {
    if (j == index || keys_[j].spec.account != account) continue;
    store_->Update(keys_[j].store_id, [&](KeyRecord& r) {
      if (!r.disabled) Extend(r, until, cause, reason);
    });
  }
}

void KeyPool::RecordServerErrorStrike(size_t index, int status) {
  const int64_t now = clock_.NowMs();
  store_->Update(keys_[index].store_id, [&](KeyRecord& r) {
    if (++r.server_error_strikes < kServerErrorStrikesToCool) return;
    if (!CoolingNow(r, now)) ++r.error_streak;
    const int64_t until = ErrorCooldownUntil(policy_, r.error_streak, now);
    std::string reason = "repeated server errors";
    if (status > 0) reason += " (" + std::to_string(status) + ")";
    Extend(r, until, Outcome::kServerError, reason);
  });
}

std::optional<int64_t> KeyPool::NextAvailableMs() const {
  const int64_t now = clock_.NowMs();
  std::optional<int64_t> earliest;
  for (size_t i = 0; i < keys_.size(); ++i) {
    KeyRecord r = store_->Load(keys_[i].store_id);
    if (!keys_[i].spec.disabled_reason.empty() || r.disabled) continue;
    std::optional<int64_t> at;
    if (CoolingNow(r, now)) {
      at = r.cooling_until_ms;
    } else if (!Leasable(i, r, now)) {
      at = now + kBusyPollMs;
    }
    if (at && (!earliest || *at < *earliest)) earliest = at;
  }
  return earliest;
}

KeyLease KeyPool::LeaseForCheck(size_t index) const { return MakeLease(index, false); }

void KeyPool::ApplyHealthCheck(size_t index, const AttemptOutcome& outcome, bool credit_known_positive) {
  if (index >= keys_.size() || !keys_[index].spec.disabled_reason.empty()) return;
  const int64_t now = clock_.NowMs();
  const std::string message = TruncateUtf8(Scrub(outcome.message), kMaxReasonChars);
  std::optional<int64_t> account_until;
  store_->Update(keys_[index].store_id, [&](KeyRecord& r) {
    account_until.reset();
    switch (outcome.outcome) {
      case Outcome::kOk:
        if (r.disabled && r.cause == Outcome::kAuthError) {
          r.disabled = false;
          r.reason.clear();
          r.cause = Outcome::kOk;
        }
        if (r.cooling && r.cause == Outcome::kQuotaExhausted && credit_known_positive) {
          r.cooling = false;  // the one case where a cooldown ends early (SPEC §3)
          r.cooling_until_ms = 0;
          r.reason.clear();
          r.cause = Outcome::kOk;
        }
        break;
      case Outcome::kAuthError:
      case Outcome::kRateLimited:
      case Outcome::kQuotaExhausted:
        r.last_status = outcome.status > 0 ? std::optional<int>(outcome.status) : std::nullopt;
        account_until = ApplyTransition(r, outcome, policy_, now, message);
        break;
      default:  // a check that could not reach the server says nothing about the key
        break;
    }
  });
  if (account_until) CoolAccount(index, *account_until, outcome.outcome);
}

KeySnapshot KeyPool::ToSnapshot(size_t index, const KeyRecord& r, int64_t now) const {
  const Key& k = keys_[index];
  KeySnapshot s;
  s.label = k.spec.label;
  s.fingerprint = k.fingerprint;
  s.cause = r.cause;
  if (!k.spec.disabled_reason.empty()) {
    s.state = KeyState::kDisabled;
    s.reason = k.spec.disabled_reason;
    s.cause = Outcome::kAuthError;
  } else if (r.disabled) {
    s.state = KeyState::kDisabled;
    s.reason = r.reason;
  } else if (CoolingNow(r, now)) {
    s.state = KeyState::kCoolingDown;
    s.reason = r.reason;
    s.ready_in_ms = r.cooling_until_ms - now;
  } else if (r.cooling && r.trial_in_flight) {
    s.state = KeyState::kCoolingDown;
    s.reason = r.reason + "; trial request in flight";
    s.ready_in_ms = 0;
  }
  s.requests = r.requests;
  s.failures = r.failures;
  s.last_status = r.last_status;
  s.last_error = r.last_error;
  s.last_used_ms = r.last_used_ms;
  s.in_flight = r.in_flight;
  s.base_url = k.spec.base_url;
  return s;
}

KeySnapshot KeyPool::SnapshotKey(size_t index) const {
  return ToSnapshot(index, store_->Load(keys_[index].store_id), clock_.NowMs());
}

PoolSnapshot KeyPool::Snapshot() const {
  const int64_t now = clock_.NowMs();
  PoolSnapshot snap;
  snap.provider = provider_;
  snap.strategy = policy_.strategy;
  std::vector<bool> leasable(keys_.size());
  for (size_t i = 0; i < keys_.size(); ++i) {
    KeyRecord r = store_->Load(keys_[i].store_id);
    leasable[i] = Leasable(i, r, now);
    snap.keys.push_back(ToSnapshot(i, r, now));
  }
  size_t start = policy_.strategy == Strategy::kRoundRobin
                     ? static_cast<size_t>(rr_cursor_.load(std::memory_order_relaxed) % keys_.size())
                     : 0;
  for (size_t step = 0; step < keys_.size(); ++step) {
    size_t i = (start + step) % keys_.size();
    if (leasable[i]) {
      snap.active_key = keys_[i].spec.label + " " + keys_[i].fingerprint;
      break;
    }
  }
  return snap;
}

}  // namespace kpm::keypool
