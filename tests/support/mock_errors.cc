#include "tests/support/mock_errors.h"

#include <cctype>
#include <cmath>
#include <cstdio>

namespace kpm::testing {
namespace {

using Json = nlohmann::ordered_json;

std::string PercentEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string GrpcStatus(int http) {
  switch (http) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "NOT_FOUND";
    case 409: return "ABORTED";
    case 429: return "RESOURCE_EXHAUSTED";
    case 499: return "CANCELLED";
    case 500: return "INTERNAL";
    case 501: return "UNIMPLEMENTED";
    case 503: return "UNAVAILABLE";
    case 504: return "DEADLINE_EXCEEDED";
    default: return http >= 500 ? "UNAVAILABLE" : "FAILED_PRECONDITION";
  }
}

int StatusOf(const std::string& name) {
  if (name == "insufficient_quota") return 429;
  if (name == "context_length") return 400;
  if (name == "echo_key") return 401;
  return std::stoi(name);  // ParseMockStep admits only digits otherwise
}

MockError OpenAiError(const MockCall& call, const std::string& name, const MockStep& step) {
  const std::string model = MockModelOr(call, "gpt-mock");
  int status = StatusOf(name);
  std::string type = status >= 500 ? "server_error" : "invalid_request_error";
  Json code = nullptr;
  Json param = nullptr;
  std::string message = "mock-upstream: scripted HTTP " + std::to_string(status) + ".";
  if (name == "401") {
    code = "invalid_api_key";
    message = "Incorrect API key provided: " + MockMaskedKey(call.key) +
              ". You can find your API key at https://platform.openai.com/account/api-keys.";
  } else if (name == "echo_key") {
    code = "invalid_api_key";
    message = "Incorrect API key provided: " + call.key +
              ". You can find your API key at https://platform.openai.com/account/api-keys?key=" +
              PercentEncode(call.key) + ".";
  } else if (name == "403") {
    type = "request_forbidden";
    code = "unsupported_country_region_territory";
    message = "Country, region, or territory not supported";
  } else if (name == "404") {
    code = "model_not_found";
    message = "The model `" + model + "` does not exist or you do not have access to it.";
  } else if (name == "400") {
    message = "Invalid value for 'messages': mock-upstream scripted bad request.";
  } else if (name == "context_length") {
    code = "context_length_exceeded";
    param = "messages";
    message = "This model's maximum context length is 128000 tokens. However, your messages "
              "resulted in 130000 tokens. Please reduce the length of the messages.";
  } else if (name == "429") {
    type = "requests";
    code = "rate_limit_exceeded";
    message = "Rate limit reached for " + model +
              " in organization org-mock on requests per min (RPM): Limit 3, Used 3, Requested 1.";
    if (step.retry_after_s) message += " Please try again in " + MockSeconds(*step.retry_after_s) + "s.";
  } else if (name == "insufficient_quota") {
    type = "insufficient_quota";
    code = "insufficient_quota";
    message = "You exceeded your current quota, please check your plan and billing details. For "
              "more information on this error, read the docs: "
              "https://platform.openai.com/docs/guides/error-codes/api-errors.";
  } else if (name == "500") {
    message = "The server had an error while processing your request. Sorry about that!";
  } else if (name == "503") {
    type = "service_unavailable_error";
    code = "server_is_overloaded";
    message = "The engine is currently overloaded, please try again later.";
  }
  MockError r;
  r.status = status;
  r.body = {{"error", {{"message", message}, {"type", type}, {"param", param}, {"code", code}}}};
  r.headers["x-request-id"] = "req_mock_" + std::to_string(call.id);
  return r;
}

MockError OpenRouterError(const MockCall& call, const std::string& name, const MockStep& step) {
  const std::string model = MockModelOr(call, "mock/model-1");
  int status = StatusOf(name);
  Json metadata = Json::object();
  std::string message = "mock-upstream: scripted HTTP " + std::to_string(status);
  std::string type = status >= 500 ? "server" : "unmapped";
  if (name == "400") {
    type = "invalid_request";
    message = "Invalid request: mock-upstream scripted bad request";
  } else if (name == "401") {
    type = "authentication";
    message = call.key.empty() ? "No auth credentials found" : "User not found.";
  } else if (name == "echo_key") {
    type = "authentication";
    message = "User not found for key " + call.key +
              " (manage keys at https://openrouter.ai/settings/keys?key=" +
              PercentEncode(call.key) + ")";
  } else if (name == "402") {
    type = "payment_required";
    metadata["limit_source"] = "openrouter_credits";
    message = "Insufficient credits. Add more using https://openrouter.ai/settings/credits";
  } else if (name == "403") {
    type = "permission_denied";
    message = model + " requires moderation on OpenAI. Your input was flagged for \"harassment\"";
    metadata["reasons"] = {"harassment"};
    metadata["flagged_input"] = "...";
    metadata["provider_name"] = "OpenAI";
    metadata["model_slug"] = model;
  } else if (name == "404") {
    type = "not_found";
    message = "No endpoints found for " + model + ".";
  } else if (name == "408" || name == "504") {
    type = "timeout";
    message = "Request timed out";
  } else if (name == "context_length") {
    type = "context_length_exceeded";
    message = "This endpoint's maximum context length is 128000 tokens. However, you requested "
              "about 130000 tokens. Please reduce the length of either one.";
  } else if (name == "429") {
    type = "rate_limit_exceeded";
    message = "Rate limit exceeded: limit_rpm/" + model + ". Please slow down.";
  } else if (name == "insufficient_quota") {
    // OpenRouter's daily cap on :free models (402 is its credit error: step "402").
    type = "rate_limit_exceeded";
    metadata["limit_source"] = "openrouter_free_tier_daily";
    message = "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free "
              "model requests per day";
  } else if (name == "500") {
    message = "Internal Server Error";
  } else if (name == "502") {
    type = "provider_unavailable";
    metadata["provider_name"] = "MockProvider";
    message = "Provider returned error";
  } else if (name == "503") {
    type = "provider_overloaded";
    message = "No instances available for " + model + ". Please try again later.";
  }
  metadata["error_type"] = type;
  MockError r;
  r.status = status;
  r.body = {{"error", {{"code", status}, {"message", message}, {"metadata", metadata}}}};
  (void)step;
  return r;
}

MockError AnthropicError(const MockCall& call, const std::string& name, const MockStep&) {
  const std::string model = MockModelOr(call, "claude-mock-1");
  int status = StatusOf(name);
  std::string type = status >= 500 ? "api_error" : "invalid_request_error";
  std::string message = "mock-upstream: scripted HTTP " + std::to_string(status);
  if (name == "400") {
    message = "messages: mock-upstream scripted bad request";
  } else if (name == "401") {
    type = "authentication_error";
    message = "invalid x-api-key";
  } else if (name == "echo_key") {
    type = "authentication_error";
    message = "invalid x-api-key " + call.key +
              " (see https://console.anthropic.com/settings/keys?key=" + PercentEncode(call.key) + ")";
  } else if (name == "402") {
    type = "billing_error";
    message = "Your account has a billing issue. Please visit Plans & Billing to resolve it.";
  } else if (name == "403") {
    type = "permission_error";
    message = "Your API key does not have permission to use the specified resource.";
  } else if (name == "404") {
    type = "not_found_error";
    message = "model: " + model;
  } else if (name == "413") {
    type = "request_too_large";
    message = "Request exceeds the maximum allowed number of bytes.";
  } else if (name == "429") {
    type = "rate_limit_error";
    message = "This request would exceed the rate limit for your organization of 50 requests per "
              "minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.";
  } else if (name == "insufficient_quota") {
    status = 400;  // what a drained prepaid account gets today (anthropic-sdk-typescript #618)
    message = "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
              "Billing to upgrade or purchase credits.";
  } else if (name == "context_length") {
    message = "prompt is too long: 205000 tokens > 200000 maximum";
  } else if (name == "500") {
    message = "Internal server error";
  } else if (name == "504") {
    type = "timeout_error";
    message = "Request timed out";
  } else if (name == "529") {
    type = "overloaded_error";
    message = "Overloaded";
  }
  MockError r;
  r.status = status;
  std::string request_id = "req_mock_" + std::to_string(call.id);
  r.body = {{"type", "error"},
            {"error", {{"type", type}, {"message", message}}},
            {"request_id", request_id}};
  r.headers["request-id"] = request_id;
  return r;
}

Json GeminiQuotaFailure(const MockCall& call, std::string_view metric, std::string_view quota_id) {
  return {{"@type", "type.googleapis.com/google.rpc.QuotaFailure"},
          {"violations",
           {{{"quotaMetric", metric},
             {"quotaId", quota_id},
             {"quotaDimensions",
              {{"model", MockModelOr(call, "gemini-mock")}, {"location", "global"}}},
             {"quotaValue", "15"}}}}};
}

Json GeminiRetryInfo(std::string delay) {
  return {{"@type", "type.googleapis.com/google.rpc.RetryInfo"}, {"retryDelay", delay}};
}

MockError GeminiError(const MockCall& call, const std::string& name, const MockStep& step) {
  const std::string model = MockModelOr(call, "gemini-mock");
  int status = StatusOf(name);
  std::string message = "mock-upstream: scripted HTTP " + std::to_string(status) + ".";
  Json details = Json::array();
  auto key_invalid = [&](std::string text) {
    details.push_back({{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
                       {"reason", "API_KEY_INVALID"},
                       {"domain", "googleapis.com"},
                       {"metadata", {{"service", "generativelanguage.googleapis.com"}}}});
    details.push_back({{"@type", "type.googleapis.com/google.rpc.LocalizedMessage"},
                       {"locale", "en-US"},
                       {"message", text}});
    return text;
  };
  if (name == "400") {
    message = "Request contains an invalid argument.";
  } else if (name == "401") {
    status = 400;  // Gemini answers a bad key with 400 INVALID_ARGUMENT + API_KEY_INVALID
    message = key_invalid("API key not valid. Please pass a valid API key.");
  } else if (name == "echo_key") {
    message = key_invalid("API key not valid: " + call.key +
                          ". Get a key at https://aistudio.google.com/app/apikey?key=" +
                          PercentEncode(call.key));
  } else if (name == "403") {
    message = "Your API key was reported as leaked. Please use another API key.";
  } else if (name == "404") {
    message = "models/" + model +
              " is not found for API version v1beta, or is not supported for generateContent. "
              "Call ListModels to see the list of available models and their supported methods.";
  } else if (name == "context_length") {
    message = "The input token count (1200000) exceeds the maximum number of tokens allowed "
              "(1048576).";
  } else if (name == "429") {
    message = "You exceeded your current quota, please check your plan and billing details. For "
              "more information on this error, head to: "
              "https://ai.google.dev/gemini-api/docs/rate-limits.";
    details.push_back(GeminiQuotaFailure(
        call, "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"));
  } else if (name == "insufficient_quota") {
    message = "You exceeded your current quota, please check your plan and billing details.";
    details.push_back(GeminiQuotaFailure(
        call, "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier"));
    // Observed: daily violations still carry a short, misleading retryDelay.
    if (!step.retry_after_s) details.push_back(GeminiRetryInfo("38s"));
  } else if (name == "500") {
    message = "An internal error has occurred. Please retry or report in "
              "https://developers.generativeai.google/guide/troubleshooting";
  } else if (name == "503") {
    message = "The model is overloaded. Please try again later.";
  } else if (name == "504") {
    message = "Deadline expired before operation could complete.";
  }
  if (step.retry_after_s) details.push_back(GeminiRetryInfo(MockSeconds(*step.retry_after_s) + "s"));
  Json error = {{"code", status}, {"message", message}, {"status", GrpcStatus(status)}};
  if (!details.empty()) error["details"] = details;
  MockError r;
  r.status = status;
  r.body = {{"error", error}};
  return r;
}

}  // namespace

std::string MockSeconds(double s) {  // "2", "0.5": Retry-After and Go-style durations
  char buf[32];
  if (s == std::floor(s)) {
    std::snprintf(buf, sizeof buf, "%.0f", s);
  } else {
    std::snprintf(buf, sizeof buf, "%.6g", s);
  }
  return buf;
}

std::string MockMaskedKey(std::string_view key) {
  if (key.size() < 12) return "***";
  return std::string(key.substr(0, 3)) + "..." + std::string(key.substr(key.size() - 4));
}

std::string MockModelOr(const MockCall& call, std::string_view fallback) {
  if (!call.model.empty()) return call.model;
  return call.flavor == Flavor::kOpenRouter ? "mock/model-1" : std::string(fallback);
}

/// The flavor's error for a step name, plus the Retry-After family of headers.
MockError BuildMockError(const MockCall& call, const std::string& name, const MockStep& step) {
  MockError r;
  switch (call.flavor) {
    case Flavor::kOpenAi: r = OpenAiError(call, name, step); break;
    case Flavor::kOpenRouter: r = OpenRouterError(call, name, step); break;
    case Flavor::kAnthropic: r = AnthropicError(call, name, step); break;
    case Flavor::kGemini: r = GeminiError(call, name, step); break;
  }
  if (step.retry_after_s) r.headers["retry-after"] = MockSeconds(*step.retry_after_s);
  if (step.retry_after_ms) r.headers["retry-after-ms"] = std::to_string(*step.retry_after_ms);
  return r;
}

}  // namespace kpm::testing
