#pragma once
/// Provider: one upstream API adapter. Each method is ONE attempt with ONE key; it turns
/// the HTTP answer into a keypool outcome (SPEC §3) plus rate-limit hints. The failover
/// loop (keypool/failover.h) decides what to do with it.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/cancel.h"
#include "keypool/clock.h"
#include "keypool/key_pool.h"
#include "keypool/outcome.h"
#include "providers/http_client.h"
#include "providers/provider_config.h"

namespace kpm::providers {

struct ChatMessage {
  std::string role;  ///< system | user | assistant
  std::string content;
};

struct CompletionRequest {
  std::vector<ChatMessage> messages;
  std::string system;                ///< extra system prompt; may be empty
  std::string model;                 ///< empty: the provider's configured model
  std::optional<int> max_tokens;
  std::optional<double> temperature;
};

struct Completion {
  std::string text;
  std::string model;
  std::string finish_reason;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
};

struct ModelInfo {
  std::string id;
  std::string name;  ///< display name when the API gives one
};

struct HealthInfo {
  bool credit_known_positive = false;     ///< the check itself showed credit left (OpenRouter /key)
  std::optional<double> credit_remaining; ///< when known
};

struct AttemptContext {
  int64_t deadline_ms = 0;  ///< Unix ms; the attempt must end by then
  const CancelToken* cancel = nullptr;
  std::function<void(size_t chars_so_far)> on_text;  ///< answer text received; may be empty
};

class Provider {
 public:
  virtual ~Provider() = default;
  virtual const ProviderConfig& config() const = 0;
  virtual keypool::AttemptOutcome Complete(const keypool::KeyLease& key, const CompletionRequest& request,
                                           const AttemptContext& ctx, Completion* out) = 0;
  virtual keypool::AttemptOutcome CheckKey(const keypool::KeyLease& key, const AttemptContext& ctx,
                                           HealthInfo* out) = 0;
  virtual keypool::AttemptOutcome ListModels(const keypool::KeyLease& key, const AttemptContext& ctx,
                                             std::vector<ModelInfo>* out) = 0;
};

/// The adapter for `config.type`. `http` and `clock` must outlive it.
std::unique_ptr<Provider> MakeProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock);

}  // namespace kpm::providers
