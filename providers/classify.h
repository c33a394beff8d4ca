#pragma once
/// HTTP answers and transport failures -> keypool outcomes (SPEC §3, PROVIDERS.md §6):
/// the error body's code/type first, the HTTP status second, phrases of the message
/// last. Provider-neutral: the four providers' error shapes have distinct
/// discriminators, so one table serves them all.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/strings.h"
#include "keypool/outcome.h"
#include "providers/http_client.h"

namespace kpm::providers {

/// An upstream error object, normalized over OpenAI, OpenRouter, Anthropic and Gemini.
struct UpstreamError {
  int code = 0;                    ///< numeric error.code (OpenRouter, Gemini); 0 if none
  std::string code_text;           ///< error.code when a string (OpenAI "insufficient_quota")
  std::string type;                ///< error.type (OpenAI, Anthropic)
  std::string status;              ///< error.status (Gemini "RESOURCE_EXHAUSTED")
  std::string error_type;          ///< OpenRouter error.metadata.error_type
  std::string detail_code;         ///< Anthropic error.details.error_code
  std::string availability_code;   ///< OpenRouter error.availability.code
  std::optional<double> availability_retry_after_s;  ///< OpenRouter availability.retry_after
  std::string limit_source;        ///< OpenRouter metadata.limit_source
  bool provider_code = false;      ///< OpenRouter metadata.provider_code present (upstream's error)
  bool moderation = false;         ///< OpenRouter moderation / guardrail metadata
  std::vector<std::string> reasons;    ///< Gemini ErrorInfo reasons (API_KEY_INVALID, ...)
  std::vector<std::string> quota_ids;  ///< Gemini QuotaFailure violations[].quotaId
  std::optional<int64_t> retry_delay_ms;  ///< Gemini RetryInfo.retryDelay
  Headers embedded_headers;        ///< OpenRouter metadata.headers, lower-cased
  std::string message;
};

/// Reads an error object (the value of "error"). Never throws; absent fields stay empty.
UpstreamError ParseErrorObject(const nlohmann::json& error);

/// Finds the error object in a body: {"error":{...}}, [{"error":{...}}] (Gemini) or
/// Anthropic's {"type":"error","error":{...}}. nullopt when the body has none.
std::optional<UpstreamError> ParseErrorBody(std::string_view body);

/// The class of an error. `status` is the HTTP status, or for an in-band error the
/// error's own numeric code (0 when it has none).
keypool::Outcome ClassifyError(int status, const UpstreamError& error);

/// A non-2xx answer (or a 2xx whose body is an error object): outcome, status, a
/// short message "429 rate_limit_exceeded: <upstream message>" and the rate-limit hints
/// of headers and body. The message quotes at most 300 bytes of upstream text, cut on a
/// UTF-8 boundary, and does not scrub: pass text already scrubbed whole (ProviderBase
/// scrubs every HttpResult before it judges one), so a cut can never hide part of a key
/// from a later scrub. The same holds for the two functions below.
keypool::AttemptOutcome ClassifyHttpError(int status, std::string_view body, const Headers& headers,
                                          int64_t now_ms);

/// An error object inside a 200 (OpenAI/OpenRouter error chunk, Anthropic
/// `event: error`, Gemini {"error":...} chunk). Status stays `http_status`.
keypool::AttemptOutcome ClassifyInBandError(const nlohmann::json& error, int http_status, const Headers& headers,
                                            int64_t now_ms);

/// A transfer that failed below HTTP: kNetwork -> network_error, the timeouts ->
/// timeout, kCancelled -> cancelled; kTooLarge (a size cap) and kAborted ->
/// server_error (adapters that abort on purpose classify that themselves).
keypool::AttemptOutcome ClassifyTransport(const HttpResult& result);

/// kpm::TruncateUtf8 under its old name, kept only because fuzz/fuzz_classify.cc still
/// calls it; remove once that file calls TruncateUtf8.
inline std::string Truncate(std::string_view text, size_t max = 300) { return TruncateUtf8(text, max); }

}  // namespace kpm::providers
