#include "providers/classify.h"

#include <string>

#include <cstdio>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace kpm::providers {
namespace {

using keypool::Outcome;
using keypool::OutcomeName;
using nlohmann::json;

constexpr int64_t kNow = 1'800'000'000'000;

struct Row {
  const char* what;
  int status;
  const char* body;
  Outcome expected;
};

// Example bodies written after each provider's documented error shapes (PROVIDERS.md).
const Row kRows[] = {
    // rate_limited
    {"OpenAI 429 rate_limit_exceeded", 429,
     R"({"error":{"message":"Rate limit reached for gpt-x on tokens per min. Please try again in 644ms.","type":"tokens","param":null,"code":"rate_limit_exceeded"}})",
     Outcome::kRateLimited},
    {"OpenAI 429 slow_down", 429, R"({"error":{"message":"Please slow down.","type":"rate_limit_error","code":"slow_down"}})",
     Outcome::kRateLimited},
    {"Anthropic 429 rate_limit_error", 429,
     R"({"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}})",
     Outcome::kRateLimited},
    {"OpenRouter 429 platform limit", 429,
     R"({"error":{"code":429,"message":"Rate limit exceeded","metadata":{"error_type":"rate_limit_exceeded"}}})",
     Outcome::kRateLimited},
    {"Gemini 429 per-minute", 429,
     R"({"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"35s"}]}})",
     Outcome::kRateLimited},
    {"bare 429 without a body", 429, "", Outcome::kRateLimited},
    // quota_exhausted
    {"OpenAI 429 insufficient_quota", 429,
     R"({"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})",
     Outcome::kQuotaExhausted},
    {"OpenAI 429 credit_balance_exhausted (type rate-limit-like)", 429,
     R"({"error":{"message":"Credit balance exhausted.","type":"requests","code":"credit_balance_exhausted"}})",
     Outcome::kQuotaExhausted},
    {"OpenAI 429 organization_spend_limit_exceeded", 429,
     R"({"error":{"message":"Spend limit reached.","type":"insufficient_quota","code":"organization_spend_limit_exceeded"}})",
     Outcome::kQuotaExhausted},
    {"OpenAI 429 project_spend_limit_exceeded", 429,
     R"({"error":{"message":"Project limit.","type":"requests","code":"project_spend_limit_exceeded"}})",
     Outcome::kQuotaExhausted},
    {"OpenAI 429 organization_usage_limit_exceeded", 429,
     R"({"error":{"message":"Usage limit.","type":"requests","code":"organization_usage_limit_exceeded"}})",
     Outcome::kQuotaExhausted},
    {"OpenRouter 402", 402,
     R"({"error":{"code":402,"message":"Insufficient credits","metadata":{"error_type":"payment_required"}}})",
     Outcome::kQuotaExhausted},
    {"bare 402", 402, "Payment Required", Outcome::kQuotaExhausted},
    {"Anthropic 402 billing_error", 402, R"({"type":"error","error":{"type":"billing_error","message":"Billing issue"}})",
     Outcome::kQuotaExhausted},
    {"Anthropic 400 credit balance too low", 400,
     R"({"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing."}})",
     Outcome::kQuotaExhausted},
    {"Anthropic 400 usage limits", 400,
     R"({"type":"error","error":{"type":"invalid_request_error","message":"You have reached your specified workspace API usage limits. You will regain access on 2026-09-01."}})",
     Outcome::kQuotaExhausted},
    {"Anthropic 429 enforced_spend_limit_reached", 429,
     R"({"type":"error","error":{"type":"rate_limit_error","message":"Monthly spend limit reached","details":{"error_code":"enforced_spend_limit_reached"}}})",
     Outcome::kQuotaExhausted},
    {"OpenRouter 429 free-models-per-day", 429,
     R"({"error":{"code":429,"message":"Rate limit exceeded: free-models-per-day. Add credits to unlock more.","metadata":{"error_type":"rate_limit_exceeded"}}})",
     Outcome::kQuotaExhausted},
    {"Gemini 429 with one PerDay quota id among per-minute ones", 429,
     R"([{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateContentInputTokensPerModelPerMinute-FreeTier"},{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"38s"}]}}])",
     Outcome::kQuotaExhausted},
    // auth_error
    {"OpenAI 401 invalid_api_key", 401,
     R"({"error":{"message":"Incorrect API key provided: sk-proj-...sQoA.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})",
     Outcome::kAuthError},
    {"OpenRouter 401", 401, R"({"error":{"code":401,"message":"User not found."}})", Outcome::kAuthError},
    {"Anthropic 401 authentication_error", 401,
     R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})", Outcome::kAuthError},
    {"Anthropic 403 permission_error", 403,
     R"({"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}})",
     Outcome::kAuthError},
    {"Gemini 400 API_KEY_INVALID", 400,
     R"({"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}})",
     Outcome::kAuthError},
    {"Gemini 403 PERMISSION_DENIED (leaked key)", 403,
     R"({"error":{"code":403,"message":"Your API key was reported as leaked. Please use another API key.","status":"PERMISSION_DENIED"}})",
     Outcome::kAuthError},
    {"Gemini 400 FAILED_PRECONDITION", 400,
     R"({"error":{"code":400,"message":"User location is not supported for the API use without a billing account linked.","status":"FAILED_PRECONDITION"}})",
     Outcome::kAuthError},
    {"OpenRouter 403 management key only", 403,
     R"({"error":{"code":403,"message":"Only management keys can perform this operation"}})", Outcome::kAuthError},
    {"bare 401", 401, "Unauthorized", Outcome::kAuthError},
    // bad_request (region / moderation / too large for TPM / other 4xx)
    {"OpenAI 403 unsupported_country_region_territory", 403,
     R"({"error":{"message":"Country, region, or territory not supported","type":"request_forbidden","code":"unsupported_country_region_territory"}})",
     Outcome::kBadRequest},
    {"OpenRouter 403 moderation", 403,
     R"({"error":{"code":403,"message":"Input was flagged","metadata":{"error_type":"permission_denied","reasons":["harassment"],"flagged_input":"...","provider_name":"X","model_slug":"a/b"}}})",
     Outcome::kBadRequest},
    {"OpenRouter 403 region_restricted", 403,
     R"({"error":{"code":403,"message":"Region","metadata":{"error_type":"permission_denied"},"availability":{"code":"region_restricted"}}})",
     Outcome::kBadRequest},
    {"OpenAI 429 Request too large", 429,
     R"({"error":{"message":"Request too large for gpt-x in organization org-1 on tokens per min (TPM): Limit 30000, Requested 50000.","type":"tokens","code":"rate_limit_exceeded"}})",
     Outcome::kBadRequest},
    {"OpenAI 404 model_not_found", 404,
     R"({"error":{"message":"The model does not exist","type":"invalid_request_error","code":"model_not_found"}})",
     Outcome::kBadRequest},
    {"OpenRouter 400 unknown model", 400,
     R"({"error":{"code":400,"message":"x is not a valid model ID","metadata":{"error_type":"invalid_request"},"availability":{"code":"model_not_found"}}})",
     Outcome::kBadRequest},
    {"Gemini 404 NOT_FOUND", 404,
     R"({"error":{"code":404,"message":"models/x is not found for API version v1beta","status":"NOT_FOUND"}})",
     Outcome::kBadRequest},
    {"422 unprocessable", 422, R"({"error":{"code":422,"message":"bad"}})", Outcome::kBadRequest},
    {"plain 400", 400, R"({"error":{"message":"Invalid value for temperature","type":"invalid_request_error"}})",
     Outcome::kBadRequest},
    // server_error
    {"OpenAI 500", 500, R"({"error":{"message":"The server had an error","type":"server_error"}})",
     Outcome::kServerError},
    {"OpenAI 503 server_is_overloaded", 503,
     R"({"error":{"message":"overloaded","type":"service_unavailable_error","code":"server_is_overloaded"}})",
     Outcome::kServerError},
    {"Anthropic 529 overloaded_error", 529,
     R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", Outcome::kServerError},
    {"Anthropic 500 api_error", 500, R"({"type":"error","error":{"type":"api_error","message":"Internal"}})",
     Outcome::kServerError},
    {"OpenRouter 429 capacity_exhausted", 429,
     R"({"error":{"code":429,"message":"All providers are rate limited","metadata":{"error_type":"rate_limit_exceeded"},"availability":{"code":"capacity_exhausted","retryable":true,"retry_after":5}}})",
     Outcome::kServerError},
    {"OpenRouter 429 from the upstream provider", 429,
     R"({"error":{"code":429,"message":"Upstream busy","metadata":{"error_type":"rate_limit_exceeded","provider_code":"429","provider_name":"X"}}})",
     Outcome::kServerError},
    {"OpenRouter 502", 502, R"({"error":{"code":502,"message":"x","metadata":{"error_type":"provider_unavailable"}}})",
     Outcome::kServerError},
    {"Gemini 503 UNAVAILABLE", 503,
     R"({"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}})",
     Outcome::kServerError},
    {"Gemini 500 INTERNAL", 500, R"({"error":{"code":500,"message":"Internal error","status":"INTERNAL"}})",
     Outcome::kServerError},
    {"bare 504 (no timeout type)", 504, "<html>Gateway Timeout</html>", Outcome::kServerError},
    {"bare 502 html", 502, "<html>Bad gateway</html>", Outcome::kServerError},
    // timeout
    {"Anthropic 504 timeout_error", 504, R"({"type":"error","error":{"type":"timeout_error","message":"Timeout"}})",
     Outcome::kTimeout},
    {"OpenRouter 408", 408, R"({"error":{"code":408,"message":"Request timed out"}})", Outcome::kTimeout},
    {"OpenRouter 504 timeout", 504, R"({"error":{"code":504,"message":"t","metadata":{"error_type":"timeout"}}})",
     Outcome::kTimeout},
    {"Gemini 504 DEADLINE_EXCEEDED", 504,
     R"({"error":{"code":504,"message":"Deadline expired","status":"DEADLINE_EXCEEDED"}})", Outcome::kTimeout},
    // context_too_long
    {"OpenAI 400 context_length_exceeded", 400,
     R"({"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})",
     Outcome::kContextTooLong},
    {"OpenRouter 400 context_length_exceeded", 400,
     R"({"error":{"code":400,"message":"too long","metadata":{"error_type":"context_length_exceeded"}}})",
     Outcome::kContextTooLong},
    {"Anthropic 400 prompt is too long", 400,
     R"({"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 205000 tokens > 200000 maximum"}})",
     Outcome::kContextTooLong},
    {"Anthropic 400 input length and max_tokens", 400,
     R"({"type":"error","error":{"type":"invalid_request_error","message":"input length and `max_tokens` exceed context limit: 190000 + 20000 > 200000"}})",
     Outcome::kContextTooLong},
    {"Gemini 400 input token count", 400,
     R"({"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}})",
     Outcome::kContextTooLong},
    {"413", 413, R"({"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum size"}})",
     Outcome::kContextTooLong},
};

TEST_CASE("every row of the classification table", "[unit][providers]") {
  for (const Row& row : kRows) {
    INFO(row.what);
    keypool::AttemptOutcome out = ClassifyHttpError(row.status, row.body, {}, kNow);
    CHECK(OutcomeName(out.outcome) == OutcomeName(row.expected));
    CHECK(out.status == row.status);
  }
}

TEST_CASE("the message is short, starts with status and code, and quotes the upstream", "[unit][providers]") {
  keypool::AttemptOutcome out = ClassifyHttpError(
      429, R"({"error":{"message":"Please try again in 644ms.","type":"tokens","code":"rate_limit_exceeded"}})", {}, kNow);
  CHECK(out.message == "429 rate_limit_exceeded: Please try again in 644ms.");
  std::string long_text(2000, 'x');
  out = ClassifyHttpError(500, R"({"error":{"message":")" + long_text + R"(","type":"server_error"}})", {}, kNow);
  CHECK(out.message.size() < 340);
  out = ClassifyHttpError(502, "", {}, kNow);
  CHECK(out.message == "502: (empty body)");
}

TEST_CASE("rate-limit hints come from headers and bodies", "[unit][providers]") {
  SECTION("Retry-After seconds on a 429") {
    auto out = ClassifyHttpError(429, "", {{"retry-after", "20"}}, kNow);
    REQUIRE(out.limits.retry_at_ms);
    CHECK(*out.limits.retry_at_ms == kNow + 20000);
  }
  SECTION("retry-after-ms wins over retry-after") {
    auto out = ClassifyHttpError(429, "", {{"retry-after-ms", "1500"}, {"retry-after", "20"}}, kNow);
    CHECK(*out.limits.retry_at_ms == kNow + 1500);
  }
  SECTION("OpenAI Go-style reset durations") {
    auto out = ClassifyHttpError(429, "",
                                 {{"x-ratelimit-remaining-requests", "0"},
                                  {"x-ratelimit-reset-requests", "6m0s"},
                                  {"x-ratelimit-remaining-tokens", "100"},
                                  {"x-ratelimit-reset-tokens", "2m52.8s"}},
                                 kNow);
    CHECK(*out.limits.requests_remaining == 0);
    CHECK(*out.limits.requests_reset_at_ms == kNow + 360000);
    CHECK(*out.limits.tokens_remaining == 100);
    CHECK(*out.limits.tokens_reset_at_ms == kNow + 172800);
  }
  SECTION("Anthropic RFC 3339 resets") {
    auto out = ClassifyHttpError(429, "",
                                 {{"anthropic-ratelimit-requests-remaining", "0"},
                                  {"anthropic-ratelimit-requests-reset", "2027-01-15T08:00:30Z"}},
                                 kNow);
    CHECK(*out.limits.requests_remaining == 0);
    CHECK(*out.limits.requests_reset_at_ms == kNow + 30000);  // 2027-01-15T08:00:30Z is kNow + 30 s
  }
  SECTION("OpenRouter availability.retry_after is bounded like a header hint") {
    // Found by fuzz_classify: 1e300 was undefined behaviour, 1e9 s a 31-year cooldown.
    const char* body =
        R"({"error":{"code":503,"message":"down","metadata":{"error_type":"provider_overloaded"},"availability":{"retry_after":%s}}})";
    auto with = [&](const char* v) {
      char buf[512];
      std::snprintf(buf, sizeof buf, body, v);
      return ClassifyHttpError(503, buf, {}, kNow);
    };
    CHECK(*with("5").limits.retry_at_ms == kNow + 5000);
    CHECK_FALSE(with("1e300").limits.retry_at_ms);
    CHECK_FALSE(with("1e9").limits.retry_at_ms);
    CHECK_FALSE(with("-3").limits.retry_at_ms);
  }
  SECTION("Gemini retryDelay on a per-minute 429") {
    auto out = ClassifyHttpError(
        429,
        R"({"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"q","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"38.2s"}]}})",
        {}, kNow);
    CHECK(out.outcome == Outcome::kRateLimited);
    CHECK(*out.limits.retry_at_ms == kNow + 38200);
  }
  SECTION("Gemini retryDelay is ignored on a daily cap") {
    auto out = ClassifyHttpError(
        429,
        R"({"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"q","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"38s"}]}})",
        {}, kNow);
    CHECK(out.outcome == Outcome::kQuotaExhausted);
    CHECK_FALSE(out.limits.retry_at_ms);
  }
  SECTION("OpenRouter X-RateLimit-Reset in epoch ms and availability.retry_after") {
    auto out = ClassifyHttpError(429, R"({"error":{"code":429,"message":"busy","availability":{"code":"x","retry_after":7}}})",
                                 {{"x-ratelimit-limit", "20"}, {"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "1800000060000"}},
                                 kNow);
    CHECK(*out.limits.requests_remaining == 0);
    CHECK(*out.limits.requests_reset_at_ms == kNow + 60000);
    CHECK(*out.limits.retry_at_ms == kNow + 7000);
  }
}

TEST_CASE("in-band errors inside a 200 are classified by the error, not the 200", "[unit][providers]") {
  using nlohmann::json;
  auto openrouter = json::parse(R"({"code":429,"message":"slow","metadata":{"error_type":"rate_limit_exceeded"}})");
  auto out = ClassifyInBandError(openrouter, 200, {}, kNow);
  CHECK(out.outcome == Outcome::kRateLimited);
  CHECK(out.status == 200);
  CHECK(out.message == "in-stream error 429 rate_limit_exceeded: slow");
  CHECK(ClassifyInBandError(json::parse(R"({"type":"overloaded_error","message":"Overloaded"})"), 200, {}, kNow).outcome ==
        Outcome::kServerError);
  CHECK(ClassifyInBandError(json::parse(R"({"code":"server_error","message":"x"})"), 200, {}, kNow).outcome ==
        Outcome::kServerError);
  CHECK(ClassifyInBandError(json::parse(R"({"message":"something"})"), 200, {}, kNow).outcome == Outcome::kServerError);
  CHECK(ClassifyInBandError(json::parse(R"({"code":402,"message":"no credit"})"), 200, {}, kNow).outcome ==
        Outcome::kQuotaExhausted);
}

TEST_CASE("transport failures map to network_error, timeout and cancelled", "[unit][providers]") {
  HttpResult r;
  r.error = TransportError::kNetwork;
  r.error_message = "Failed to connect to 127.0.0.1 port 1: Connection refused";
  CHECK(ClassifyTransport(r).outcome == Outcome::kNetworkError);
  CHECK(ClassifyTransport(r).status == 0);
  for (TransportError e : {TransportError::kFirstByteTimeout, TransportError::kIdleTimeout, TransportError::kTotalTimeout}) {
    r.error = e;
    CHECK(ClassifyTransport(r).outcome == Outcome::kTimeout);
  }
  r.error = TransportError::kCancelled;
  CHECK(ClassifyTransport(r).outcome == Outcome::kCancelled);
}

TEST_CASE("error objects of surprising shapes never throw and never misread", "[unit][providers]") {
  SECTION("a code past int is no code: its low bits must not read as 429") {
    // 4294967725 = 2^32 + 429.
    auto out = ClassifyHttpError(400, R"({"error":{"code":4294967725,"message":"x"}})", {}, kNow);
    CHECK(out.outcome == Outcome::kBadRequest);
    CHECK(ClassifyInBandError(json::parse(R"({"code":4294967725,"message":"x"})"), 200, {}, kNow).outcome ==
          Outcome::kServerError);
    CHECK(ParseErrorObject(json::parse(R"({"code":18446744073709551615})")).code == 0);
    CHECK(ParseErrorObject(json::parse(R"({"code":-4294966867})")).code == 0);
    CHECK(ParseErrorObject(json::parse(R"({"code":1e300})")).code == 0);
    CHECK(ParseErrorObject(json::parse(R"({"code":429})")).code == 429);
  }
  SECTION("wrong types read as absent") {
    const char* kErrors[] = {
        R"({"message":5,"type":[],"status":{},"code":null})",
        R"({"details":"x","metadata":[1]})",
        R"({"details":[1,"x",{"@type":7},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":35}]})",
        R"({"details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":{"quotaId":"PerDay"}}]})",
        R"({"metadata":{"provider_code":null,"headers":{"retry-after":[1],"x":null}},"availability":{"retry_after":"5"}})",
        R"({"metadata":{"headers":"retry-after: 5"},"availability":[]})",
        R"({"availability":{"retry_after":1e300}})",
    };
    for (const char* e : kErrors) {
      INFO(e);
      keypool::AttemptOutcome out;
      CHECK_NOTHROW(out = ClassifyInBandError(json::parse(e), 200, {}, kNow));
      CHECK(out.outcome == Outcome::kServerError);
      CHECK_FALSE(out.limits.retry_at_ms);
      CHECK_NOTHROW(out = ClassifyHttpError(500, std::string(R"({"error":)") + e + "}", {}, kNow));
      CHECK(out.outcome == Outcome::kServerError);
    }
  }
  SECTION("a null provider_code is no provider code") {
    auto out = ClassifyHttpError(429, R"({"error":{"code":429,"message":"slow down","metadata":{"provider_code":null}}})",
                                 {}, kNow);
    CHECK(out.outcome == Outcome::kRateLimited);
  }
}

TEST_CASE("a size cap passed is a server_error that names the cap", "[unit][providers]") {
  HttpResult r;
  r.error = TransportError::kTooLarge;
  r.error_message = "response headers over 256 KiB";
  CHECK(ClassifyTransport(r).outcome == Outcome::kServerError);
  CHECK(ClassifyTransport(r).message == "response headers over 256 KiB");
  r.status = 200;
  r.error_message = "a body over 32 MiB";
  CHECK(ClassifyTransport(r).message == "200 with a body over 32 MiB");
}

}  // namespace
}  // namespace kpm::providers
