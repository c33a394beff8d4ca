#pragma once
/// One scripted behaviour of the mock upstream (docs/mock-upstream.md): what the next
/// request of a key gets. Parsed from the small step language ("429:retry-after=2",
/// "ok:Hi", "delay:200:500") or from a JSON object ({"step": "429", "headers": {…}}).

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"

namespace kpm::testing {

/// A parsed step. Plain data; copyable; shared between threads only as const.
struct MockStep {
  enum class Kind {
    kOk,          ///< 200 with `text` (stream or JSON, as the request asked)
    kEmpty,       ///< 200 whose answer has no text at all
    kError,       ///< an error in the flavor's format, named by `error`
    kDelay,       ///< wait `ms`, then answer `then` (default: ok)
    kSlow,        ///< ok whose stream events are `ms` apart
    kHang,        ///< never send headers (until the client leaves, the server stops or `ms`)
    kDrop,        ///< close the connection without any answer
    kCut,         ///< 200, half of the answer, then close without the terminator
    kMalformed,   ///< 200 whose body / SSE data is not JSON
    kEchoKey,     ///< 401 whose message and a URL in it carry the full key
    kRemaining0,  ///< ok with rate-limit headers saying "remaining 0, reset in `ms`/1000 s"
    kInbandError, ///< 200 that starts fine, then carries the flavor's error `error`
    kRaw,         ///< `status` with `body` as is
    kEndless,     ///< 200 stream that starts fine and never ends (until the client leaves)
    kHugeLine,    ///< 200 whose body is `bytes` bytes with no newline at all
  };

  Kind kind = Kind::kOk;
  std::string source;                ///< the text it was parsed from (logs, Requests())
  std::optional<std::string> text;   ///< answer text; unset = the mock's default text
  /// kError / kInbandError: "429", "insufficient_quota", "context_length" or any
  /// HTTP status in digits ("500", "529", "504"…).
  std::string error;
  int status = 0;                    ///< kRaw
  std::string body;                  ///< kRaw
  int ms = 0;                        ///< kDelay, kSlow, kHang (0 = no limit), kRemaining0
  int64_t bytes = 0;                 ///< kHugeLine
  std::optional<double> retry_after_s;    ///< Retry-After header (+ Gemini RetryInfo)
  std::optional<long> retry_after_ms;     ///< retry-after-ms header
  std::map<std::string, std::string> headers;  ///< extra response headers
  std::shared_ptr<const MockStep> then;        ///< kDelay: what follows the wait
};

/// Parses the step language. An unknown word or a bad number is kInvalidArgument with
/// a message that quotes the step.
Result<MockStep> ParseMockStep(std::string_view text);

/// Parses a step given as JSON: a string (the step language) or an object
/// {"step": "<step language>", "text", "headers": {name: value}, "status", "body",
///  "ms", "retry_after"} whose fields override what "step" said ("step" defaults to "ok").
Result<MockStep> ParseMockStepJson(const nlohmann::json& value);

}  // namespace kpm::testing
