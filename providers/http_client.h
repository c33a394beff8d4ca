#pragma once
/// HttpClient: one HTTP exchange, streaming the body to a callback. Abstract so the
/// adapters can be tested against a FakeHttpClient with scripted answers; the only
/// real implementation is CurlHttpClient (curl_http_client.cc, the one file that
/// includes libcurl).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/cancel.h"
#include "common/fiber.h"
#include "providers/caps.h"

namespace kpm::providers {

/// HTTP response headers as the adapters see them: names lower-cased, one value per
/// name (a repeated header keeps its last value).
using Headers = std::map<std::string, std::string>;

/// SPEC §2's timeout defaults (timeoutMs, firstByteTimeoutMs, idleTimeoutMs), stated
/// once: ProviderConfig starts from them and so does a bare HttpRequest.
inline constexpr int64_t kDefaultTimeoutMs = 60000;
inline constexpr int64_t kDefaultFirstByteTimeoutMs = 30000;
inline constexpr int64_t kDefaultIdleTimeoutMs = 20000;

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int64_t connect_timeout_ms = 10000;
  int64_t first_byte_timeout_ms = kDefaultFirstByteTimeoutMs;  ///< request sent -> response headers
  int64_t idle_timeout_ms = kDefaultIdleTimeoutMs;             ///< longest silence between body bytes
  int64_t total_timeout_ms = kDefaultTimeoutMs;                ///< whole exchange
  const CancelToken* cancel = nullptr;    ///< abort promptly (<= 50 ms) when set
  /// The most bytes collected into HttpResult::body: a 2xx body read whole (no body
  /// callback) up to this, a non-2xx body up to min(this, kMaxErrorBodyBytes). Past
  /// it the transfer stops with kTooLarge. Callers reading a listing or a
  /// `stream: false` completion raise it to kMaxWholeBodyBytes.
  size_t max_body_bytes = kMaxErrorBodyBytes;
};

enum class TransportError {
  kNone,
  kNetwork,           ///< refused, reset, DNS, TLS, closed before a status line
  kFirstByteTimeout,
  kIdleTimeout,
  kTotalTimeout,
  kCancelled,
  kAborted,           ///< the body callback returned false
  kTooLarge,          ///< a size cap was passed and the transfer stopped; error_message
                      ///< names it. Response headers over kMaxHeaderBytes: status 0, no
                      ///< headers. A collected body over max_body_bytes: status and
                      ///< headers stand, body holds the first bytes, body_complete false.
};

struct HttpResult {
  TransportError error = TransportError::kNone;
  std::string error_message;  ///< for kNetwork etc.; may echo the URL: scrub before use
  int status = 0;             ///< 0 when no status line arrived
  Headers headers;            ///< lower-cased names
  std::string body;           ///< whole body when no callback consumed it
  bool body_complete = false; ///< the transfer ended cleanly (not cut mid-body). A body cut
                              ///< after the headers (reset, EOF) is error kNone with
                              ///< body_complete false and error_message set: the status
                              ///< stands, the caller judges the cut. kNetwork means no
                              ///< status line arrived (status 0, no headers).
};

/// Called with each piece of the body as it arrives (after headers). Return false
/// to abort the transfer. When given, HttpResult::body stays empty... unless the
/// status is not 2xx, in which case the body is collected (up to the cap) for error parsing.
using BodyCallback = std::function<bool(std::string_view chunk)>;

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  /// Thread-safe. On a fiber (common/fiber.h) the transfer parks the fiber, not the thread.
  virtual HttpResult Send(const HttpRequest& request, const BodyCallback& on_body) = 0;
};

/// The libcurl implementation: every transfer in one multi handle driven by `loop`'s
/// thread (the client becomes the loop's Poller; `loop` must outlive it).
std::unique_ptr<HttpClient> MakeCurlHttpClient(fiber::Loop& loop);

}  // namespace kpm::providers
