// libFuzzer target: providers/rate_limit_headers.h, the parsers of the headers in which
// upstreams say when a key may be used again. Every parse function gets the raw input
// text; ParseRateLimitHeaders gets a header map built from the input
// ("name: value" lines, one header per line). `now_ms` is a realistic clock reading
// (2001..2286) taken from the input. Checks (the header's promises):
//   - nothing throws, no UB (UBSan: signed overflow in the arithmetic);
//   - durations are never negative and never beyond kMaxHintMs ("garbage");
//   - ParseProtobufDurationMs("<decimal>s") == ParseGoDurationMs of the same text;
//   - dates are not before 1970-01-01 minus a day of offset, nor after 9999;
//   - ParseRetryAfter: never more than kMaxHintMs after now;
//   - ParseRateLimitHeaders: remaining counts >= 0; every reset/retry time is at most
//     kMaxHintMs after now; header names are case-insensitive (upper-casing every
//     name gives the same result).
#include <fuzzer/FuzzedDataProvider.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "providers/rate_limit_headers.h"

#include "fuzz/fuzz_check.h"

namespace {

using kpm::fuzz::Fail;
using kpm::fuzz::g_input;

namespace kp = kpm::keypool;
namespace pv = kpm::providers;




constexpr int64_t kDayMs = 24LL * 3600 * 1000;
constexpr int64_t kYear10000Ms = 253402300800000LL;  // 10000-01-01T00:00:00Z

std::string Show(std::optional<int64_t> v) { return v ? std::to_string(*v) : "none"; }

void CheckDuration(std::optional<int64_t> v, const char* fn, std::string_view text) {
  if (!v) return;
  if (*v < 0 || *v > pv::kMaxHintMs) {
    Fail(std::string(fn) + "(\"" + std::string(text.substr(0, 120)) + (text.size() > 120 ? "...\"" : "\"") + ") = " + std::to_string(*v) +
         " ms: outside [0, kMaxHintMs]");
  }
}

void CheckDate(std::optional<int64_t> v, const char* fn) {
  if (!v) return;
  if (*v < -kDayMs || *v >= kYear10000Ms + kDayMs) Fail(std::string(fn) + " out of range: " + std::to_string(*v));
}

bool IsDecimalSeconds(std::string_view t) {
  // "12", "1.5", ".5", "12." followed by one 's' and nothing else (no spaces).
  if (t.size() < 2 || t.back() != 's') return false;
  t.remove_suffix(1);
  bool digit = false;
  int dots = 0;
  for (char c : t) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c == '.') {
      ++dots;
    } else {
      return false;
    }
  }
  return digit && dots <= 1;
}

void CheckParsers(std::string_view text, int64_t now_ms) {
  const auto go = pv::ParseGoDurationMs(text);
  CheckDuration(go, "ParseGoDurationMs", text);
  const auto pb = pv::ParseProtobufDurationMs(text);
  CheckDuration(pb, "ParseProtobufDurationMs", text);
  if (IsDecimalSeconds(text) && go != pb) {
    Fail("ParseGoDurationMs and ParseProtobufDurationMs disagree on \"" + std::string(text) + "\": " + Show(go) +
         " vs " + Show(pb));
  }
  CheckDate(pv::ParseHttpDateMs(text), "ParseHttpDateMs");
  CheckDate(pv::ParseRfc3339Ms(text), "ParseRfc3339Ms");
  if (const auto ra = pv::ParseRetryAfter(text, now_ms)) {
    if (*ra - now_ms > pv::kMaxHintMs) Fail("ParseRetryAfter beyond kMaxHintMs: " + std::to_string(*ra - now_ms));
  }
}

void CheckInfo(const kp::RateLimitInfo& info, int64_t now_ms) {
  if (info.requests_remaining) CHECK(*info.requests_remaining >= 0);
  if (info.tokens_remaining) CHECK(*info.tokens_remaining >= 0);
  for (const auto* t : {&info.retry_at_ms, &info.requests_reset_at_ms, &info.tokens_reset_at_ms}) {
    if (*t && **t - now_ms > pv::kMaxHintMs) {
      Fail("a time more than kMaxHintMs ahead: " + std::to_string(**t - now_ms) + " ms");
    }
  }
}

bool SameInfo(const kp::RateLimitInfo& a, const kp::RateLimitInfo& b) {
  return a.retry_at_ms == b.retry_at_ms && a.requests_remaining == b.requests_remaining &&
         a.requests_reset_at_ms == b.requests_reset_at_ms && a.tokens_remaining == b.tokens_remaining &&
         a.tokens_reset_at_ms == b.tokens_reset_at_ms;
}

// Names the fuzzer is likely to need; picking by index makes hitting them cheap.
constexpr const char* kNames[] = {
    "retry-after-ms",
    "retry-after",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
};

void Run(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  // 2001-09-09 .. 2286-11-20: a wall clock, as the caller passes.
  const int64_t now_ms = fdp.ConsumeIntegralInRange<int64_t>(1000000000000LL, 9999999999999LL);
  const bool names_from_table = fdp.ConsumeBool();
  const std::string text = fdp.ConsumeRemainingBytesAsString();

  // Each parse function on the whole text and on each line.
  CheckParsers(text, now_ms);
  pv::Headers headers;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + start, nl - start);
    start = nl + 1;
    if (line.empty()) continue;
    size_t colon = line.find(':');
    std::string name, value;
    if (names_from_table && !line.empty()) {
      name = kNames[static_cast<unsigned char>(line[0]) % std::size(kNames)];
      value = std::string(line.substr(1));
    } else if (colon != std::string_view::npos) {
      name = std::string(line.substr(0, colon));
      value = std::string(line.substr(colon + 1));
    } else {
      continue;
    }
    CheckParsers(value, now_ms);
    headers[name] = value;
  }
  const kp::RateLimitInfo info = pv::ParseRateLimitHeaders(headers, now_ms);
  CheckInfo(info, now_ms);

  // Case-insensitive names: only comparable when no two names fold to the same one
  // (then which value wins is a matter of map order, not of case handling).
  pv::Headers upper;
  pv::Headers folded;
  bool collision = false;
  for (const auto& [name, value] : headers) {
    std::string u = name, l = name;
    for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!upper.emplace(u, value).second || !folded.emplace(l, value).second) collision = true;
  }
  if (!collision && !SameInfo(info, pv::ParseRateLimitHeaders(upper, now_ms))) {
    Fail("upper-cased header names give a different RateLimitInfo");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return kpm::fuzz::RunOne(data, size, Run);
}
