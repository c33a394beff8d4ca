#include "providers/rate_limit_headers.h"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

namespace kpm::providers {
namespace {

constexpr int64_t kNow = 1700000000000;  // 2023-11-14T22:13:20Z

TEST_CASE("Go-style reset durations parse to milliseconds", "[unit][providers][hints]") {
  struct Row {
    std::string text;
    std::optional<int64_t> want;
  };
  const std::vector<Row> rows = {
      {"1s", 1000},          {"6m0s", 360000},     {"250ms", 250},   {"12ms", 12},
      {"1h2m3.5s", 3723500}, {"2m52.8s", 172800},  {"33.023s", 33023}, {"0.5s", 500},
      {"1.0001s", 1001},     {"64", 64000},        {"1.5", 1500},    {" 7s ", 7000},
      {"1500us", 2},         {"1500µs", 2},        {"0s", 0},
      {"", std::nullopt},    {"-1", std::nullopt}, {"s", std::nullopt}, {"1x", std::nullopt},
      {"abc", std::nullopt}, {"1m-3s", std::nullopt}, {"..s", std::nullopt},
      {"99999999999999999999h", std::nullopt}, {"200h", std::nullopt},  // past a week: garbage
      {"604799s999999999999ns", std::nullopt},  // fuzz_rate_limit_hints: the ns branch skipped the bound
  };
  for (const Row& row : rows) {
    CAPTURE(row.text);
    CHECK(ParseGoDurationMs(row.text) == row.want);
  }
}

TEST_CASE("Protobuf durations from Gemini RetryInfo parse", "[unit][providers][hints]") {
  CHECK(ParseProtobufDurationMs("35s") == 35000);
  CHECK(ParseProtobufDurationMs("0.2s") == 200);
  CHECK(ParseProtobufDurationMs("38.2s") == 38200);
  CHECK(ParseProtobufDurationMs("35") == std::nullopt);
  CHECK(ParseProtobufDurationMs("s") == std::nullopt);
  CHECK(ParseProtobufDurationMs("-3s") == std::nullopt);
  CHECK(ParseProtobufDurationMs("1e3s") == std::nullopt);
  CHECK(ParseProtobufDurationMs("") == std::nullopt);
}

TEST_CASE("HTTP dates and RFC 3339 timestamps parse to Unix ms", "[unit][providers][hints]") {
  CHECK(ParseHttpDateMs("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777000);
  CHECK(ParseHttpDateMs("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777000);
  CHECK(ParseHttpDateMs("Sun Nov  6 08:49:37 1994") == 784111777000);
  CHECK(ParseHttpDateMs("Tue, 14 Nov 2023 22:13:40 GMT") == kNow + 20000);
  CHECK(ParseHttpDateMs("Tue, 14 Foo 2023 22:13:40 GMT") == std::nullopt);
  CHECK(ParseHttpDateMs("Tue, 14 Nov 2023 25:13:40 GMT") == std::nullopt);
  CHECK(ParseHttpDateMs("Tue, 14 Nov 2023 22:13:40") == std::nullopt);
  CHECK(ParseHttpDateMs(",") == std::nullopt);

  CHECK(ParseRfc3339Ms("2023-11-14T22:13:50Z") == kNow + 30000);
  CHECK(ParseRfc3339Ms("2023-11-14T22:13:50.250Z") == kNow + 30250);
  CHECK(ParseRfc3339Ms("2023-11-14T23:13:50+01:00") == kNow + 30000);
  CHECK(ParseRfc3339Ms("2023-11-14T21:13:50-01:00") == kNow + 30000);
  CHECK(ParseRfc3339Ms("2023-11-14T22:13:50") == std::nullopt);
  CHECK(ParseRfc3339Ms("2023-13-14T22:13:50Z") == std::nullopt);
  CHECK(ParseRfc3339Ms("yesterday") == std::nullopt);
  CHECK(ParseRfc3339Ms("2023-11-14T22:13:50.Z") == std::nullopt);
}

TEST_CASE("Retry-After takes delta seconds, fractions or an HTTP date", "[unit][providers][hints]") {
  CHECK(ParseRetryAfter("20", kNow) == kNow + 20000);
  CHECK(ParseRetryAfter("1.5", kNow) == kNow + 1500);
  CHECK(ParseRetryAfter("Tue, 14 Nov 2023 22:13:40 GMT", kNow) == kNow + 20000);
  CHECK(ParseRetryAfter("-1", kNow) == std::nullopt);
  CHECK(ParseRetryAfter("soon", kNow) == std::nullopt);
  CHECK(ParseRetryAfter("Fri, 01 Jan 2100 00:00:00 GMT", kNow) == std::nullopt);  // absurdly far
}

TEST_CASE("Rate-limit headers of each provider become one RateLimitInfo", "[unit][providers][hints]") {
  SECTION("retry-after-ms wins over retry-after") {
    auto info = ParseRateLimitHeaders({{"retry-after-ms", "1500.5"}, {"retry-after", "20"}}, kNow);
    CHECK(info.retry_at_ms == kNow + 1501);
  }
  SECTION("Retry-After in any letter case") {
    auto info = ParseRateLimitHeaders({{"Retry-After", "20"}}, kNow);
    CHECK(info.retry_at_ms == kNow + 20000);
  }
  SECTION("OpenAI remaining counts and reset durations") {
    auto info = ParseRateLimitHeaders({{"x-ratelimit-remaining-requests", "0"},
                                       {"x-ratelimit-reset-requests", "6m0s"},
                                       {"x-ratelimit-remaining-tokens", "149984"},
                                       {"x-ratelimit-reset-tokens", "2m52.8s"}},
                                      kNow);
    CHECK(info.requests_remaining == 0);
    CHECK(info.requests_reset_at_ms == kNow + 360000);
    CHECK(info.tokens_remaining == 149984);
    CHECK(info.tokens_reset_at_ms == kNow + 172800);
    CHECK_FALSE(info.retry_at_ms);
  }
  SECTION("Anthropic: RFC 3339 resets, the tightest token limit decides") {
    auto info = ParseRateLimitHeaders({{"anthropic-ratelimit-requests-remaining", "49"},
                                       {"anthropic-ratelimit-requests-reset", "2023-11-14T22:13:21Z"},
                                       {"anthropic-ratelimit-tokens-remaining", "5000"},
                                       {"anthropic-ratelimit-tokens-reset", "2023-11-14T22:13:30Z"},
                                       {"anthropic-ratelimit-input-tokens-remaining", "0"},
                                       {"anthropic-ratelimit-input-tokens-reset", "2023-11-14T22:13:50Z"},
                                       {"anthropic-ratelimit-output-tokens-remaining", "8000"},
                                       {"anthropic-ratelimit-output-tokens-reset", "2023-11-14T22:13:25Z"},
                                       {"retry-after", "30"}},
                                      kNow);
    CHECK(info.requests_remaining == 49);
    CHECK(info.requests_reset_at_ms == kNow + 1000);
    CHECK(info.tokens_remaining == 0);
    CHECK(info.tokens_reset_at_ms == kNow + 30000);
    CHECK(info.retry_at_ms == kNow + 30000);
  }
  SECTION("OpenRouter: X-RateLimit-Reset in epoch ms") {
    auto info = ParseRateLimitHeaders(
        {{"X-RateLimit-Limit", "20"}, {"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset", std::to_string(kNow + 41000)}},
        kNow);
    CHECK(info.requests_remaining == 0);
    CHECK(info.requests_reset_at_ms == kNow + 41000);
  }
  SECTION("Azure-style bare seconds and -1 sentinels") {
    auto info = ParseRateLimitHeaders({{"x-ratelimit-reset-requests", "64"}, {"x-ratelimit-remaining-requests", "-1"}},
                                      kNow);
    CHECK(info.requests_reset_at_ms == kNow + 64000);
    CHECK_FALSE(info.requests_remaining);
  }
  SECTION("garbage gives no hint, never a crash") {
    const std::vector<std::string> junk = {"", " ", "-", ".", "1e9", "NaN", "inf", "0x10", "1h2", "9999999999999999999999",
                                           "Tue, 99 Nov 2023 22:13:40 GMT", "\xff\xfe", "2023-11-14T22:13:50+0100",
                                           "1.2.3s", "m", "12ms34"};
    for (const std::string& v : junk) {
      CAPTURE(v);
      auto info = ParseRateLimitHeaders({{"retry-after", v},
                                         {"retry-after-ms", v},
                                         {"x-ratelimit-reset-requests", v},
                                         {"x-ratelimit-reset-tokens", v},
                                         {"x-ratelimit-remaining-requests", v},
                                         {"x-ratelimit-reset", v},
                                         {"anthropic-ratelimit-tokens-remaining", v},
                                         {"anthropic-ratelimit-tokens-reset", v}},
                                        kNow);
      CHECK_FALSE(info.retry_at_ms);
      CHECK_FALSE(info.requests_reset_at_ms);
      CHECK_FALSE(info.tokens_reset_at_ms);
      CHECK_FALSE(info.tokens_remaining);
      CHECK_FALSE(info.requests_remaining);
    }
  }
  SECTION("no headers, no hint") {
    auto info = ParseRateLimitHeaders({}, kNow);
    CHECK_FALSE(info.retry_at_ms);
    CHECK_FALSE(info.requests_remaining);
  }
}

TEST_CASE("A retry hint only ever pushes the retry time out", "[unit][providers][hints]") {
  keypool::RateLimitInfo info;
  ExtendRetryAt(info, kNow + 5000);
  CHECK(info.retry_at_ms == kNow + 5000);
  ExtendRetryAt(info, kNow + 1000);
  CHECK(info.retry_at_ms == kNow + 5000);
  ExtendRetryAt(info, kNow + 9000);
  CHECK(info.retry_at_ms == kNow + 9000);
}

}  // namespace
}  // namespace kpm::providers
