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
/// How long past the call's deadline a trial or in-flight lease of a process that
/// crashed keeps its key: then another process may take it.
constexpr int64_t kLeaseGraceMs = 5000;
/// How long a sticky hold lasts without renewal; renewed at half of it.
constexpr int64_t kStickyHoldMs = 10 * 60 * 1000;
constexpr int64_t kMinuteMs = 60 * 1000;
constexpr int64_t kDayMs = 24 * 3600 * 1000;

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
/// A hold counts while it has not expired; this process's own holds count until it
/// releases them (it always does: KeyLease), however long they last. Expiry is only
/// for the holds of a process that may have crashed.
bool Live(const Hold& h, int64_t now, const std::string& me) {
  return h.until_ms > now || (h.until_ms > 0 && !me.empty() && h.owner == me);
}

bool TrialOut(const KeyRecord& r, int64_t now, const std::string& me) { return r.cooling && Live(r.trial, now, me); }

/// Extends the cooldown to `until` (never shortens it). True if it grew.
bool Extend(KeyRecord& r, int64_t until, Outcome cause, std::string reason, int64_t now) {
  if (r.cooling && r.cooling_until_ms >= until) return false;
  r.cooling = true;
  r.cooling_until_ms = std::max(r.cooling_until_ms, until);
  r.cause_at_ms = std::max(r.cause_at_ms, now);
  r.cause = cause;
  r.reason = std::move(reason);
  return true;
}

void DropExpired(std::vector<Hold>& holds, int64_t now, const std::string& me) {
  holds.erase(std::remove_if(holds.begin(), holds.end(), [&](const Hold& h) { return !Live(h, now, me); }),
              holds.end());
}

int CountLive(const std::vector<Hold>& holds, int64_t now, const std::string& me) {
  int n = 0;
  for (const Hold& h : holds) n += Live(h, now, me);
  return n;
}

/// Live holds of processes other than `me`.
int CountOthers(const std::vector<Hold>& holds, int64_t now, const std::string& me) {
  int n = 0;
  for (const Hold& h : holds) n += h.owner != me && h.until_ms > now;
  return n;
}

/// Removes one hold of `owner` (the oldest). True if there was one.
bool Release(std::vector<Hold>& holds, const std::string& owner) {
  auto it = std::find_if(holds.begin(), holds.end(), [&](const Hold& h) { return h.owner == owner; });
  if (it == holds.end()) return false;
  holds.erase(it);
  return true;
}

bool WindowOpen(const Window& w, int64_t length, int64_t now) { return w.start_ms > 0 && now < w.start_ms + length; }

void Charge(Window& w, int64_t length, int64_t amount, int64_t now) {
  if (amount <= 0) return;
  if (!WindowOpen(w, length, now)) w = Window{now, 0};
  w.used += amount;
}

/// A limit the key has reached now: which, and when it is back.
struct LimitHit {
  std::string_view name;  ///< "rpm" | "rpd" | "tpm"
  int64_t back_at_ms = 0;
  int64_t limit = 0;
};

std::optional<LimitHit> AtLimit(const KeyRecord& r, const KeyLimits& l, int64_t now) {
  std::optional<LimitHit> hit;
  auto check = [&](std::string_view name, const Window& w, int64_t length, int64_t limit) {
    if (limit <= 0 || !WindowOpen(w, length, now) || w.used < limit) return;
    const int64_t back = w.start_ms + length;
    if (!hit || back > hit->back_at_ms) hit = LimitHit{name, back, limit};
  };
  check("rpm", r.minute, kMinuteMs, l.rpm);
  check("tpm", r.minute_tokens, kMinuteMs, l.tpm);
  check("rpd", r.day, kDayMs, l.rpd);
  return hit;
}

bool HasFigures(const RateLimitInfo& l) {
  return l.retry_at_ms || l.requests_remaining || l.requests_reset_at_ms || l.tokens_remaining ||
         l.tokens_reset_at_ms;
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
///
/// `started_ms` is when the attempt began: a success ends a cooldown only when it
/// began after the cooldown's cause (a slow success from before a 429 that another
/// process saw says nothing about the key now).
std::optional<int64_t> ApplyTransition(KeyRecord& r, const AttemptOutcome& o, const FailoverPolicy& p,
                                       int64_t now, int64_t started_ms, const std::string& message) {
  // A signal that arrives while the key is already known to be cooling (concurrent
  // calls answering together) extends the cooldown but does not escalate it.
  const bool known_cooling = CoolingNow(r, now);
  std::optional<int64_t> account_until;
  switch (o.outcome) {
    case Outcome::kOk:
      r.rate_limit_streak = 0;
      r.error_streak = 0;
      r.server_error_strikes = 0;
      if (r.cooling && now >= r.cooling_until_ms && started_ms >= r.cause_at_ms) {
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
      Extend(r, until, o.outcome, "rate limited" + StatusText(o), now);
      account_until = r.cooling_until_ms;
      break;
    }
    case Outcome::kQuotaExhausted: {
      int64_t until = now + p.quota_cooldown_ms;
      if (o.limits.retry_at_ms) until = std::max(until, *o.limits.retry_at_ms);
      Extend(r, until, o.outcome, "quota exhausted", now);
      account_until = r.cooling_until_ms;
      break;
    }
    case Outcome::kAuthError:
      r.disabled = true;
      r.disabled_at_ms = std::max(r.disabled_at_ms, now);
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
      Extend(r, until, o.outcome, reason, now);
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
           which + " limit reached (remaining 0)", now);
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
  leased_at_ms = other.leased_at_ms;
  pool_ = other.pool_;
  other.pool_ = nullptr;
  return *this;
}

KeyLease::~KeyLease() {
  if (pool_ != nullptr) pool_->Report(*this, AbandonedOutcome());
}

void ResetRecord(KeyRecord& r, int64_t now) {
  KeyRecord fresh;
  fresh.requests = r.requests;
  fresh.failures = r.failures;
  fresh.last_used_ms = r.last_used_ms;
  fresh.last_status = r.last_status;
  fresh.sticky = std::move(r.sticky);
  fresh.leases = std::move(r.leases);
  fresh.in_flight = r.in_flight;
  fresh.reset_at_ms = now;
  r = std::move(fresh);
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
  if (keys.empty()) {
    KeySpec keyless;
    keyless.label = provider_;
    keys.push_back(std::move(keyless));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    Key k;
    k.spec = std::move(keys[i]);
    if (k.spec.label.empty()) k.spec.label = provider_ + "#" + std::to_string(i + 1);
    k.fingerprint = Fingerprint(k.spec.secret);
    k.store_id = store_->Bind(KeyIdentity{provider_, k.spec.label, k.spec.base_url, k.spec.host, k.spec.secret, i});
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

KeyPool::~KeyPool() {
  size_t mine = sticky_.load();
  if (mine != kNoKey) Unstick(mine);
}

size_t KeyPool::NextStart() {
  switch (policy_.strategy) {
    case Strategy::kSequential:
      return 0;
    case Strategy::kRoundRobin:
      return static_cast<size_t>(rr_cursor_.fetch_add(1, std::memory_order_relaxed) % keys_.size());
    case Strategy::kSticky: {
      size_t mine = sticky_.load();
      if (mine == kNoKey) return ChooseStickyKey();
      if (clock_.NowMs() >= sticky_until_.load()) StickTo(mine, clock_.NowMs());
      return mine;
    }
  }
  return 0;
}

size_t KeyPool::ChooseStickyKey() {
  std::lock_guard<std::mutex> lock(sticky_mu_);
  if (size_t mine = sticky_.load(); mine != kNoKey) return mine;
  const std::string& me = store_->owner();
  // Choose, then claim in one atomic update that checks the count has not grown
  // since: two processes starting together do not both take the same key.
  for (int attempt = 0; attempt < 4; ++attempt) {
    const int64_t now = clock_.NowMs();
    size_t best = 0;
    int best_holders = 0;
    uint64_t best_requests = 0;
    bool best_ready = false;
    for (size_t i = 0; i < keys_.size(); ++i) {
      KeyRecord r = store_->Load(keys_[i].store_id);
      const bool ready = Leasable(i, r, now);
      const int holders = CountOthers(r.sticky, now, me);
      const bool better = i == 0 || (ready && !best_ready) ||
                          (ready == best_ready && (holders < best_holders ||
                                                   (holders == best_holders && r.requests < best_requests)));
      if (better) {
        best = i;
        best_holders = holders;
        best_requests = r.requests;
        best_ready = ready;
      }
    }
    bool claimed = false;
    store_->Update(keys_[best].store_id, [&](KeyRecord& r) {
      claimed = false;
      if (CountOthers(r.sticky, now, me) > best_holders) return;
      DropExpired(r.sticky, now, me);
      Release(r.sticky, me);
      r.sticky.push_back(Hold{me, now + kStickyHoldMs});
      claimed = true;
    });
    if (claimed || attempt == 3) {
      sticky_.store(best);
      sticky_until_.store(now + kStickyHoldMs / 2);
      return best;
    }
  }
  return 0;
}

void KeyPool::StickTo(size_t index, int64_t now) {
  std::lock_guard<std::mutex> lock(sticky_mu_);
  const std::string& me = store_->owner();
  size_t old = sticky_.load();
  if (old != kNoKey && old != index) Unstick(old);
  store_->Update(keys_[index].store_id, [&](KeyRecord& r) {
    DropExpired(r.sticky, now, me);
    Release(r.sticky, me);
    r.sticky.push_back(Hold{me, now + kStickyHoldMs});
  });
  sticky_.store(index);
  sticky_until_.store(now + kStickyHoldMs / 2);
}

void KeyPool::Unstick(size_t index) {
  const std::string& me = store_->owner();
  store_->Update(keys_[index].store_id, [&](KeyRecord& r) { Release(r.sticky, me); });
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
  lease.leased_at_ms = clock_.NowMs();
  return lease;
}

bool KeyPool::Leasable(size_t index, const KeyRecord& r, int64_t now) const {
  if (!keys_[index].spec.disabled_reason.empty() || r.disabled) return false;
  if (CoolingNow(r, now)) return false;
  const std::string& me = store_->owner();
  if (TrialOut(r, now, me)) return false;  // half-open: one trial at a time, machine-wide
  if (policy_.max_in_flight > 0 && CountLive(r.leases, now, me) >= policy_.max_in_flight) return false;
  if (AtLimit(r, keys_[index].spec.limits, now)) return false;
  return true;
}

std::optional<KeyLease> KeyPool::Acquire(size_t start, const std::vector<bool>& exclude) {
  const size_t n = keys_.size();
  const int64_t now = clock_.NowMs();
  const std::string& me = store_->owner();
  // A lease's hold outlives the call's deadline a little; after that it is a crashed
  // process's and no longer counts.
  const int64_t hold_until = now + policy_.deadline_ms + kLeaseGraceMs;
  for (size_t step = 0; step < n; ++step) {
    size_t i = (start + step) % n;
    if (i < exclude.size() && exclude[i]) continue;
    bool leased = false;
    bool trial = false;
    const KeyLimits& limits = keys_[i].spec.limits;
    store_->Update(keys_[i].store_id, [&](KeyRecord& r) {
      leased = false;
      trial = false;
      if (!Leasable(i, r, now)) return;
      leased = true;
      trial = r.cooling;  // the cooldown has ended: this lease is the trial
      if (trial) r.trial = Hold{me, hold_until};
      if (policy_.max_in_flight > 0) {
        DropExpired(r.leases, now, me);
        r.leases.push_back(Hold{me, hold_until});
      }
      if (limits.rpm > 0) Charge(r.minute, kMinuteMs, 1, now);
      if (limits.rpd > 0) Charge(r.day, kDayMs, 1, now);
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
  const std::string& me = store_->owner();
  const KeyLimits& limits = keys_[i].spec.limits;
  KeyRecord after = store_->Update(keys_[i].store_id, [&](KeyRecord& r) {
    r.in_flight = std::max(0, r.in_flight - 1);
    if (lease.trial && r.trial.owner == me) r.trial = Hold{};
    if (policy_.max_in_flight > 0) Release(r.leases, me);
    if (limits.tpm > 0) Charge(r.minute_tokens, kMinuteMs, outcome.tokens, now);
    if (HasFigures(outcome.limits)) r.last_limits = outcome.limits;
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
    account_until.reset();
    if (fault == Fault::kKey) account_until = ApplyTransition(r, outcome, policy_, now, lease.leased_at_ms, message);
  });
  if (account_until) CoolAccount(i, *account_until, outcome.outcome);
  // Sticky: the key that answered is this process's key from now on.
  if (policy_.strategy == Strategy::kSticky && outcome.outcome == Outcome::kOk && sticky_.load() != i) StickTo(i, now);
  return ToSnapshot(i, after, now);
}

void KeyPool::CoolAccount(size_t index, int64_t until, Outcome cause) {
  const std::string& account = keys_[index].spec.account;
  if (account.empty()) return;
  const int64_t now = clock_.NowMs();
  std::string reason = "account " + account + " " + std::string(OutcomeName(cause)) + " (via " +
                       keys_[index].spec.label + ")";
  if (cause == Outcome::kQuotaExhausted) reason = "quota exhausted (account " + account + ", via " +
                                                  keys_[index].spec.label + ")";
  for (size_t j = 0; j < keys_.size(); ++j) {
    if (j == index || keys_[j].spec.account != account) continue;
    store_->Update(keys_[j].store_id, [&](KeyRecord& r) {
      if (!r.disabled) Extend(r, until, cause, reason, now);
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
    Extend(r, until, Outcome::kServerError, reason, now);
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
    } else if (auto hit = AtLimit(r, keys_[i].spec.limits, now)) {
      at = hit->back_at_ms;
    } else if (!Leasable(i, r, now)) {
      at = now + kBusyPollMs;
    }
    if (at && (!earliest || *at < *earliest)) earliest = at;
  }
  return earliest;
}

KeyLease KeyPool::LeaseForCheck(size_t index) const { return MakeLease(index, false); }

void KeyPool::ApplyHealthCheck(size_t index, const AttemptOutcome& outcome, bool credit_known_positive,
                               int64_t started_ms) {
  if (index >= keys_.size() || !keys_[index].spec.disabled_reason.empty()) return;
  const int64_t now = clock_.NowMs();
  const std::string message = TruncateUtf8(Scrub(outcome.message), kMaxReasonChars);
  std::optional<int64_t> account_until;
  store_->Update(keys_[index].store_id, [&](KeyRecord& r) {
    account_until.reset();
    switch (outcome.outcome) {
      case Outcome::kOk:
        if (r.disabled && r.cause == Outcome::kAuthError && started_ms >= r.disabled_at_ms) {
          r.disabled = false;
          r.reason.clear();
          r.cause = Outcome::kOk;
        }
        if (r.cooling && r.cause == Outcome::kQuotaExhausted && credit_known_positive &&
            started_ms >= r.cause_at_ms) {
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
        account_until = ApplyTransition(r, outcome, policy_, now, started_ms, message);
        break;
      default:  // a check that could not reach the server says nothing about the key
        break;
    }
  });
  if (account_until) CoolAccount(index, *account_until, outcome.outcome);
}

KeySnapshot SnapshotOf(const KeyRecord& r, const KeyLimits& limits, int64_t now, const std::string& me) {
  KeySnapshot s;
  s.cause = r.cause;
  if (r.disabled) {
    s.state = KeyState::kDisabled;
    s.reason = r.reason;
  } else if (CoolingNow(r, now)) {
    s.state = KeyState::kCoolingDown;
    s.reason = r.reason;
    s.ready_in_ms = r.cooling_until_ms - now;
  } else if (TrialOut(r, now, me)) {
    s.state = KeyState::kCoolingDown;
    s.reason = r.reason + "; trial request in flight";
    s.ready_in_ms = 0;
  } else if (auto hit = AtLimit(r, limits, now)) {
    s.state = KeyState::kCoolingDown;
    s.reason = "at its " + std::string(hit->name) + " limit (" + std::to_string(hit->limit) + ")";
    s.ready_in_ms = hit->back_at_ms - now;
  }
  s.requests = r.requests;
  s.failures = r.failures;
  s.last_status = r.last_status;
  s.last_error = r.last_error;
  s.last_used_ms = r.last_used_ms;
  s.in_flight = std::max(r.in_flight, CountLive(r.leases, now, me));
  return s;
}

KeySnapshot KeyPool::ToSnapshot(size_t index, const KeyRecord& r, int64_t now) const {
  const Key& k = keys_[index];
  KeySnapshot s = SnapshotOf(r, k.spec.limits, now, store_->owner());
  s.label = k.spec.label;
  s.fingerprint = k.fingerprint;
  if (!k.spec.disabled_reason.empty()) {
    s.state = KeyState::kDisabled;
    s.reason = k.spec.disabled_reason;
    s.cause = Outcome::kAuthError;
    s.ready_in_ms.reset();
  }
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
  size_t start = 0;
  if (policy_.strategy == Strategy::kRoundRobin) {
    start = static_cast<size_t>(rr_cursor_.load(std::memory_order_relaxed) % keys_.size());
  } else if (size_t mine = sticky_.load(); policy_.strategy == Strategy::kSticky && mine != kNoKey) {
    start = mine;
  }
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
