#include "providers/provider_config.h"

namespace kpm::providers {

std::string_view ProviderTypeName(ProviderType t) {
  switch (t) {
    case ProviderType::kOpenAI: return "openai";
    case ProviderType::kOpenRouter: return "openrouter";
    case ProviderType::kAnthropic: return "anthropic";
    case ProviderType::kGemini: return "gemini";
    case ProviderType::kOpenAICompatible: return "openai-compatible";
  }
  return "unknown";
}

std::optional<ProviderType> ParseProviderType(std::string_view name) {
  for (ProviderType t : {ProviderType::kOpenAI, ProviderType::kOpenRouter, ProviderType::kAnthropic,
                         ProviderType::kGemini, ProviderType::kOpenAICompatible}) {
    if (ProviderTypeName(t) == name) return t;
  }
  return std::nullopt;
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

}  // namespace kpm::providers
