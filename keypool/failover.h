#pragma once
/// The failover loop: one call walks a provider's keys (and then its fallback
/// providers), one attempt per key, until one answers, the call is cancelled or out
/// of time, or nothing is left. This is where every failover decision is made.

#include <any>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/cancel.h"
#include "keypool/key_pool.h"
#include "keypool/outcome.h"

namespace kpm::keypool {

/// One attempt with one key, to be finished by `deadline_ms` (Unix ms). An exception
/// that escapes it ends the attempt as a server_error "internal error: …" (the key is
/// returned and the call fails over); it never escapes RunCall.
using AttemptFn = std::function<AttemptOutcome(const KeyLease& key, int64_t deadline_ms)>;

struct AttemptRecord {
  std::string provider;
  std::string key;  ///< "label fingerprint"
  Outcome outcome = Outcome::kOk;
  int status = 0;   ///< 0 = none
  std::string message;  ///< scrubbed
  int64_t elapsed_ms = 0;
};

/// Something a person (or a progress notification) should hear about.
struct FailoverEvent {
  enum class Kind { kSwitch, kWait, kFallback } kind = Kind::kSwitch;
  std::string provider;
  std::string text;  ///< e.g. "openai#1 rate_limited, trying openai#2"
};

/// One provider of a call's chain: its pool and how to run one attempt with it.
struct ChainStep {
  KeyPool* pool = nullptr;
  AttemptFn attempt;
};

struct CallOptions {
  const CancelToken* cancel = nullptr;
  std::function<void(const FailoverEvent&)> on_event;  ///< may be empty
  /// When the call arrived (Clock ms; 0: now). The deadline counts from it, so a call
  /// that waited in a queue has that much less time.
  int64_t arrived_ms = 0;
};

struct CallResult {
  Outcome outcome = Outcome::kOk;     ///< kOk when a key answered; else the deciding class
  std::string provider;                ///< provider that answered (or was tried last)
  std::optional<KeyLease> key;         ///< the key that answered (kOk only)
  std::vector<AttemptRecord> attempts; ///< every attempt of every provider, in order
  std::string message;                 ///< failure text: exhaustion report listing every key, or the upstream message
  std::vector<PoolSnapshot> pools;     ///< state of each pool tried, after the call
};

/// Runs one call over `chain` (chain[0] first, then its fallback providers in order).
/// The deadline is chain[0]'s policy deadline_ms from options.arrived_ms (else now); no attempt
/// starts past it and each AttemptFn gets it as its absolute deadline. Attempts run
/// one after another on the calling thread, with no lock held.
///
/// A provider is done for the call (SPEC §3) when no usable key is left, its
/// server-error budget (serverErrorRetries, per provider) is spent, every endpoint it
/// has failed with a network error or timeout, or it answered context_too_long; the
/// next provider of the chain is then tried. The call ends with an answer (kOk, `key`
/// set); bad_request (the upstream message, no failover); cancellation (kCancelled);
/// the deadline (kTimeout); or the last provider done: its server error or
/// context_too_long message, else the class of the last failed attempt and
/// DescribeExhaustion() of every pool tried. Every attempt is in `attempts`; every key
/// switch and every fallback is logged at info with its reason.
CallResult RunCall(const std::vector<ChainStep>& chain, const CallOptions& options, Clock& clock);

/// One attempt's outcome and, when it is kOk, what it produced (a completion, a model
/// list): an attempt returns its payload with its outcome.
template <class T>
struct Attempt {
  AttemptOutcome outcome;
  T value{};
};

/// A chain step whose attempts return a payload of type T.
template <class T>
struct TypedStep {
  KeyPool* pool = nullptr;
  std::function<Attempt<T>(const KeyLease& key, int64_t deadline_ms)> attempt;
};

/// RunCall's result plus the payload of the attempt that answered (set only on kOk).
template <class T>
struct TypedResult {
  CallResult call;
  std::optional<T> value;
};

namespace detail {
/// A step whose payload's type the loop does not need to know.
struct PayloadStep {
  KeyPool* pool = nullptr;
  std::function<Attempt<std::any>(const KeyLease& key, int64_t deadline_ms)> attempt;
};
/// The failover loop itself (both RunCall overloads are views of it): the payload of
/// the attempt that answered is returned in *payload.
CallResult RunCall(const std::vector<PayloadStep>& chain, const CallOptions& options, Clock& clock,
                   std::any* payload);
}  // namespace detail

/// RunCall over attempts that return a payload: the same loop; the answering attempt's
/// value comes back in the result.
template <class T>
TypedResult<T> RunCall(const std::vector<TypedStep<T>>& chain, const CallOptions& options, Clock& clock) {
  std::vector<detail::PayloadStep> steps;
  for (const TypedStep<T>& s : chain) {
    if (!s.attempt) continue;
    steps.push_back({s.pool, [&s](const KeyLease& key, int64_t deadline) {
                       Attempt<T> a = s.attempt(key, deadline);
                       return Attempt<std::any>{std::move(a.outcome), std::any(std::move(a.value))};
                     }});
  }
  std::any payload;
  TypedResult<T> out;
  out.call = detail::RunCall(steps, options, clock, &payload);
  if (out.call.outcome == Outcome::kOk) {
    if (T* value = std::any_cast<T>(&payload)) out.value = std::move(*value);
  }
  return out;
}

/// The exhaustion report: one line per key of every pool, with label, fingerprint,
/// state, reason and "ready in 41s" for cooling keys. Holds no key material.
std::string DescribeExhaustion(const std::vector<PoolSnapshot>& pools);

}  // namespace kpm::keypool
