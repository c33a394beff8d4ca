#include "providers/provider.h"

#include "providers/provider_base.h"

namespace kpm::providers {

std::unique_ptr<Provider> MakeProvider(const ProviderConfig& config, HttpClient& http, keypool::Clock& clock) {
  switch (config.type) {
    case ProviderType::kAnthropic: return MakeAnthropicProvider(config, http, clock);
    case ProviderType::kGemini: return MakeGeminiProvider(config, http, clock);
    case ProviderType::kOpenAI:
    case ProviderType::kOpenRouter:
    case ProviderType::kOpenAICompatible: break;
  }
  return MakeOpenAIProvider(config, http, clock);
}

}  // namespace kpm::providers
