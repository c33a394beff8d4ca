#pragma once
/// One provider's settings, as the config loader (server/config.cc) produces them and
/// the adapters consume them. Plain struct; defaults are SPEC §2's.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keypool/key_pool.h"
#include "keypool/policy.h"
#include "providers/http_client.h"

namespace kpm::providers {

enum class ProviderType { kOpenAI, kOpenRouter, kAnthropic, kGemini, kOpenAICompatible };

/// The config spelling of each ProviderType (`type:`, or a provider named after its
/// type), in enum order.
inline constexpr std::string_view kProviderTypeNames[] = {"openai", "openrouter", "anthropic", "gemini",
                                                          "openai-compatible"};
/// "openai", "openrouter", "anthropic", "gemini", "openai-compatible".
std::string_view ProviderTypeName(ProviderType t);
/// The ProviderType spelled `name` (one of kProviderTypeNames), or nullopt.
std::optional<ProviderType> ParseProviderType(std::string_view name);
/// Default baseUrl per known type; empty for openai-compatible (it must be given).
std::string DefaultBaseUrl(ProviderType t);
/// The model used when neither the call nor the config names one (SPEC §2): a stable
/// alias where the provider offers one. Empty for openai-compatible, whose server is
/// asked (GET /models) instead.
std::string DefaultModel(ProviderType t);
/// The max_tokens sent when neither the call nor the config gives one: 4096 for
/// anthropic (its API requires the field), nullopt (the field is left out) otherwise.
std::optional<int> DefaultMaxTokens(ProviderType t);

struct ProviderConfig {
  std::string name;
  ProviderType type = ProviderType::kOpenAI;
  std::string base_url;                      ///< no trailing slash
  std::vector<keypool::KeySpec> keys;        ///< empty: no auth header is sent
  std::string model;                         ///< empty: none configured
  std::optional<int> max_tokens;             ///< the loader starts from DefaultMaxTokens(type)
  std::map<std::string, std::string> headers;
  bool stream = true;
  int64_t timeout_ms = kDefaultTimeoutMs;
  int64_t first_byte_timeout_ms = kDefaultFirstByteTimeoutMs;
  int64_t idle_timeout_ms = kDefaultIdleTimeoutMs;
  bool health_check = false;
  std::optional<std::vector<std::string>> fallback;  ///< nullopt: the top-level value
  keypool::FailoverPolicy failover;                  ///< includes strategy and deadline
  keypool::KeyLimits limits;                         ///< `limits`: the default of each key's
};

}  // namespace kpm::providers
