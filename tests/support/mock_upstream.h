#pragma once
/// A scripted mock of the four upstream APIs (OpenAI, OpenRouter, Anthropic, Gemini) on
/// 127.0.0.1, for integration and end-to-end tests (docs/mock-upstream.md).
///
/// The API is chosen per request from the path (…/chat/completions, …/messages,
/// …/models/M:generateContent, …/models, …/key) and, for …/models, the auth header.
/// What a request gets is scripted per key: each key has a queue of steps (mock_step.h);
/// a request pops one, or takes the key's default step when the queue is empty.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/mock_reply.h"
#include "tests/support/mock_step.h"

namespace kpm::testing {

/// One request as the mock saw it. Holds no key material: the key only as its
/// kpm::Fingerprint, and credential headers are left out of `headers`.
struct RecordedRequest {
  std::string method;           ///< "POST", "GET"
  std::string path;             ///< without the query string
  std::string key_fingerprint;  ///< kpm::Fingerprint(key); "(no key)" when none was sent
  Flavor flavor = Flavor::kOpenAi;
  std::string model;            ///< from the body or the Gemini path; may be empty
  bool stream = false;
  int status = 0;               ///< HTTP status answered; 0 for hang and drop
  std::string step;             ///< the step applied, as scripted
  bool key_in_query = false;    ///< the key came as ?key= (SPEC §6 forbids it)
  std::map<std::string, std::string> headers;  ///< lower-cased names, credentials removed
  std::string body;             ///< the request body as received
  std::chrono::system_clock::time_point time;  ///< when the request arrived
};

/// The mock server. Thread-safe: every method may be called from any thread while the
/// server runs. Movable neither way; one instance per test (or per process).
class MockUpstream {
 public:
  MockUpstream();
  /// Stops the server and joins its threads; a hanging request is let go at once.
  ~MockUpstream();
  MockUpstream(const MockUpstream&) = delete;
  MockUpstream& operator=(const MockUpstream&) = delete;

  /// Binds 127.0.0.1 (`port` 0 = an ephemeral port), serves on a background thread and
  /// returns once it accepts requests. Returns the bound port, or 0 when binding failed
  /// (or Start was already called). Ignores SIGPIPE process-wide (writes to peers that
  /// left must not kill a test binary). `threads`: requests served at once (each delay,
  /// slow stream or hang holds one); a test with many concurrent slow calls raises it.
  int Start(int port = 0, int threads = 32);
  /// Stops serving; idempotent. Delays, slow streams and hangs end at once.
  void Stop();

  int port() const;
  /// "http://127.0.0.1:PORT" + prefix: "/v1" (OpenAI, Anthropic), "/api/v1" (OpenRouter
  /// flavor), "/v1beta" (Gemini).
  std::string base_url(std::string_view prefix = "/v1") const;

  /// Replaces `key`'s queue with `steps` (step language, mock_step.h). Key "*" is the
  /// script every key without its own script starts from (copied at its first request).
  /// A step that does not parse answers HTTP 599 naming the problem, and is logged to
  /// stderr: check steps first with ParseMockStep when that matters.
  void Script(std::string key, std::vector<std::string> steps);
  /// Same, with steps already parsed (the control API uses this).
  void ScriptParsed(std::string key, std::vector<MockStep> steps);
  /// The step `key` gets when its queue is empty (default "ok"). Key "*" sets it for
  /// every key without its own default. An invalid step behaves as in Script().
  void SetDefault(std::string key, std::string step);
  void SetDefaultParsed(std::string key, MockStep step);

  /// Every request so far, in arrival order (a hanging request is already listed).
  std::vector<RecordedRequest> Requests() const;
  /// Forgets scripts, defaults and recorded requests; lets hanging requests go.
  void Reset();

  /// Called once per request, after it is recorded and before it is answered, on the
  /// serving thread (the binary logs with it). Set before Start().
  void SetObserver(std::function<void(const RecordedRequest&)> observer);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// A recorded request as JSON (the control API's GET /_mock/requests element).
std::string RecordedRequestJson(const RecordedRequest& request);

}  // namespace kpm::testing
