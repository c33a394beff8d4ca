#pragma once
/// Helpers shared by the keypool unit tests: key lists, outcomes and a scripted
/// AttemptFn that answers per key label from a queue (ok once the queue is empty).

#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "keypool/failover.h"
#include "keypool/key_pool.h"

namespace kpm::testing {

inline std::vector<keypool::KeySpec> Keys(const std::vector<std::string>& secrets, const std::string& provider = "openai",
                                          const std::string& account = "") {
  std::vector<keypool::KeySpec> keys;
  for (size_t i = 0; i < secrets.size(); ++i) {
    keys.push_back(keypool::KeySpec{secrets[i], provider + "#" + std::to_string(i + 1), account, "", "", "", {}, ""});
  }
  return keys;
}

/// Three realistic canary keys for provider "openai".
inline std::vector<std::string> OpenAiSecrets(size_t n = 3) {
  std::vector<std::string> all = {"sk-proj-AAAAaaaaBBBBbbbb9f3a", "sk-proj-CCCCccccDDDDdddd1c3d4",
                                  "sk-proj-EEEEeeeeFFFFffffab12", "sk-proj-GGGGggggHHHHhhhh5678"};
  return {all.begin(), all.begin() + static_cast<long>(n)};
}

inline keypool::AttemptOutcome Out(keypool::Outcome o, int status = 0, std::string message = "") {
  keypool::AttemptOutcome out;
  out.outcome = o;
  out.status = status;
  out.message = std::move(message);
  return out;
}

/// Answers per key label from a queue; ok when the queue is empty. Records who was
/// called. Thread-safe.
class Script {
 public:
  void Queue(const std::string& label, keypool::AttemptOutcome out) {
    std::lock_guard<std::mutex> lock(mu_);
    queued_[label].push_back(std::move(out));
  }
  /// Every attempt with this key answers `out` from now on.
  void Always(const std::string& label, keypool::AttemptOutcome out) {
    std::lock_guard<std::mutex> lock(mu_);
    always_[label] = std::move(out);
  }
  void Clear(const std::string& label) {
    std::lock_guard<std::mutex> lock(mu_);
    always_.erase(label);
    queued_.erase(label);
  }
  keypool::AttemptFn Fn() {
    return [this](const keypool::KeyLease& key, int64_t deadline_ms) {
      std::lock_guard<std::mutex> lock(mu_);
      calls_.push_back(key.label);
      deadlines_.push_back(deadline_ms);
      auto a = always_.find(key.label);
      if (a != always_.end()) return a->second;
      auto& q = queued_[key.label];
      if (q.empty()) return Out(keypool::Outcome::kOk, 200);
      keypool::AttemptOutcome out = q.front();
      q.pop_front();
      return out;
    };
  }
  std::vector<std::string> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::vector<int64_t> deadlines() const {
    std::lock_guard<std::mutex> lock(mu_);
    return deadlines_;
  }
  void ResetCalls() {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::deque<keypool::AttemptOutcome>> queued_;
  std::map<std::string, keypool::AttemptOutcome> always_;
  std::vector<std::string> calls_;
  std::vector<int64_t> deadlines_;
};

/// "openai#1 rate_limited" for each attempt, to compare attempts lists at a glance.
inline std::vector<std::string> Summary(const std::vector<keypool::AttemptRecord>& attempts) {
  std::vector<std::string> out;
  for (const auto& a : attempts) {
    out.push_back(a.key.substr(0, a.key.find(' ')) + " " + std::string(keypool::OutcomeName(a.outcome)));
  }
  return out;
}

}  // namespace kpm::testing
