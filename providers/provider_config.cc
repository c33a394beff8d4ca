#include "providers/provider_config.h"

#include "common/name_table.h"

namespace kpm::providers {

std::string_view ProviderTypeName(ProviderType t) { return NameOf(kProviderTypeNames, t); }

std::optional<ProviderType> ParseProviderType(std::string_view name) {
  return FromName<ProviderType>(kProviderTypeNames, name);
}

std::string DefaultBaseUrl(ProviderType t) {
  switch (t) {
    case ProviderType::kOpenAI: return "https://api.openai.com/v1";
    case ProviderType::kOpenRouter: return "https://openrouter.ai/api/v1";
    case ProviderType::kAnthropic: return "https://api.anthropic.com/v1";
    case ProviderType::kGemini: return "https://generativelanguage.googleapis.com/v1beta";
    case ProviderType::kOpenAICompatible: return "";
  }
  return "";
}

std::string DefaultModel(ProviderType t) {
  switch (t) {
    case ProviderType::kOpenAI: return "gpt-4o-mini";
    case ProviderType::kOpenRouter: return "openrouter/auto";
    case ProviderType::kAnthropic: return "claude-sonnet-4-5";
    case ProviderType::kGemini: return "gemini-flash-latest";
    case ProviderType::kOpenAICompatible: return "";
  }
  return "";
}

std::optional<int> DefaultMaxTokens(ProviderType t) {
  if (t == ProviderType::kAnthropic) return 4096;
  return std::nullopt;
}

}  // namespace kpm::providers
