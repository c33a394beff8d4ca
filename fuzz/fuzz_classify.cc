// libFuzzer target: providers/classify.h, which turns what an upstream answered
// (status + body + headers, or an in-band error object, or a transport failure) into
// a keypool outcome plus rate-limit hints (SPEC §3, PROVIDERS.md §6). Checks:
//   - nothing throws; no UB (UBSan: float->int conversions of body numbers, overflow);
//   - an error answer never classifies as ok;
//   - with nothing in the body to go on, the status decides as SPEC §3 says:
//     401/403 auth_error, 402 quota_exhausted, 429 rate_limited, 5xx server_error,
//     other 4xx bad_request;
//   - every hint time is at most kMaxHintMs after now (longer ones are garbage,
//     providers/rate_limit_headers.h), remaining counts are >= 0;
//   - the message starts with the status and, for valid UTF-8 input, is valid UTF-8
//     (Truncate cuts on a character boundary) and bounded in size;
//   - Truncate(text, max) is a prefix of text plus "…", at most max + 3 bytes.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "providers/classify.h"
#include "providers/rate_limit_headers.h"

#include "fuzz/fuzz_check.h"

namespace {

using kpm::fuzz::Fail;
using kpm::fuzz::g_input;

namespace pv = kpm::providers;
namespace kp = kpm::keypool;
using kp::Outcome;




bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

void CheckLimits(const kp::RateLimitInfo& info, int64_t now_ms, const char* where) {
  if (info.requests_remaining) CHECK(*info.requests_remaining >= 0);
  if (info.tokens_remaining) CHECK(*info.tokens_remaining >= 0);
  for (const auto* t : {&info.retry_at_ms, &info.requests_reset_at_ms, &info.tokens_reset_at_ms}) {
    if (*t && **t - now_ms > pv::kMaxHintMs) {
      Fail(std::string(where) + ": a hint " + std::to_string(**t - now_ms) +
           " ms ahead, beyond kMaxHintMs (garbage must give no hint)");
    }
  }
}

void CheckTruncate(std::string_view text, size_t max) {
  const std::string t = pv::Truncate(text, max);
  if (text.size() <= max) {
    CHECK(t == text);
    return;
  }
  static constexpr std::string_view kEllipsis = "\xE2\x80\xA6";
  CHECK(t.size() >= kEllipsis.size());
  CHECK(t.size() <= max + kEllipsis.size());
  CHECK(std::string_view(t).substr(t.size() - kEllipsis.size()) == kEllipsis);
  CHECK(text.substr(0, t.size() - kEllipsis.size()) == std::string_view(t).substr(0, t.size() - kEllipsis.size()));
  if (ValidUtf8(text)) CHECK(ValidUtf8(t));
}

void CheckHttpError(int status, const std::string& body, const pv::Headers& headers, int64_t now_ms) {
  const kp::AttemptOutcome out = pv::ClassifyHttpError(status, body, headers, now_ms);
  CHECK(out.outcome != Outcome::kOk);
  CHECK(out.outcome != Outcome::kCancelled);
  CHECK(out.status == status);
  CHECK(out.message.rfind(std::to_string(status), 0) == 0);
  CheckLimits(out.limits, now_ms, "ClassifyHttpError");
  if (ValidUtf8(body) && !ValidUtf8(out.message)) Fail("ClassifyHttpError message is not valid UTF-8");

  // With no error object in the body, the status alone decides (SPEC §3).
  if (!pv::ParseErrorBody(body)) {
    Outcome want = Outcome::kServerError;
    if (status == 401 || status == 403) want = Outcome::kAuthError;
    else if (status == 402) want = Outcome::kQuotaExhausted;
    else if (status == 429) want = Outcome::kRateLimited;
    else if (status == 408) want = Outcome::kTimeout;
    else if (status == 413) want = Outcome::kContextTooLong;
    else if (status >= 500) want = Outcome::kServerError;
    else if (status >= 400) want = Outcome::kBadRequest;
    if (out.outcome != want) {
      Fail("status " + std::to_string(status) + " with a body without an error object gave " +
           std::string(kp::OutcomeName(out.outcome)) + ", expected " + std::string(kp::OutcomeName(want)));
    }
  }
}

void CheckInBand(const nlohmann::json& error, int status, const pv::Headers& headers, int64_t now_ms) {
  const kp::AttemptOutcome out = pv::ClassifyInBandError(error, status, headers, now_ms);
  CHECK(out.outcome != Outcome::kOk);
  CHECK(out.outcome != Outcome::kCancelled);
  CHECK(out.status == status);
  CHECK(out.message.rfind("in-stream error", 0) == 0);
  CheckLimits(out.limits, now_ms, "ClassifyInBandError");
}

constexpr const char* kHeaderNames[] = {
    "retry-after", "retry-after-ms", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens",
    "x-ratelimit-remaining-requests", "x-ratelimit-reset", "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-requests-reset", "content-type",
};

void Run(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  int status;
  switch (fdp.ConsumeIntegralInRange<int>(0, 7)) {
    case 0: status = fdp.ConsumeIntegral<int>(); break;
    case 1: status = 429; break;
    case 2: status = 400 + fdp.ConsumeIntegralInRange<int>(0, 30); break;
    case 3: status = 500 + fdp.ConsumeIntegralInRange<int>(0, 30); break;
    default: status = fdp.ConsumeIntegralInRange<int>(0, 999); break;
  }
  const int64_t now_ms = fdp.ConsumeIntegralInRange<int64_t>(1000000000000LL, 9999999999999LL);
  pv::Headers headers;
  const int n_headers = fdp.ConsumeIntegralInRange<int>(0, 4);
  for (int i = 0; i < n_headers; ++i) {
    const char* name = kHeaderNames[fdp.ConsumeIntegralInRange<size_t>(0, std::size(kHeaderNames) - 1)];
    headers[name] = fdp.ConsumeRandomLengthString(40);
  }
  const size_t trunc_max = fdp.ConsumeIntegralInRange<size_t>(0, 64);
  const std::string body = fdp.ConsumeRemainingBytesAsString();

  CheckHttpError(status, body, headers, now_ms);
  CheckTruncate(body, trunc_max);
  CheckTruncate(body, 300);

  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_discarded()) {
    // As the streaming adapters do: the "error" member of a chunk, else the whole chunk.
    if (doc.is_object() && doc.contains("error")) {
      CheckInBand(doc["error"], 200, headers, now_ms);
    } else {
      CheckInBand(doc, 200, headers, now_ms);
    }
    if (auto e = pv::ParseErrorBody(body)) {
      const Outcome o = pv::ClassifyError(status, *e);
      CHECK(o != Outcome::kOk && o != Outcome::kCancelled);
    }
  }

  // Transport failures.
  pv::HttpResult r;
  r.status = status;
  r.error_message = body.substr(0, 64);
  for (auto err : {pv::TransportError::kNone, pv::TransportError::kNetwork, pv::TransportError::kFirstByteTimeout,
                   pv::TransportError::kIdleTimeout, pv::TransportError::kTotalTimeout,
                   pv::TransportError::kCancelled, pv::TransportError::kAborted}) {
    r.error = err;
    const kp::AttemptOutcome out = pv::ClassifyTransport(r);
    CHECK(out.outcome != Outcome::kOk);
    CHECK((out.outcome == Outcome::kCancelled) == (err == pv::TransportError::kCancelled));
    CHECK(!out.message.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return kpm::fuzz::RunOne(data, size, Run);
}
