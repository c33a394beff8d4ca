#pragma once
/// What the mock upstream answers: turns (request facts, scripted step) into a
/// MockReply in the wire format of one upstream API (PROVIDERS.md). Pure: no sockets,
/// no clocks of its own, so each flavor's shapes can be read and tested in one place.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/mock_step.h"

namespace kpm::testing {

/// Which API's formats a request is answered in (chosen from its path and auth header).
enum class Flavor { kOpenAi, kOpenRouter, kAnthropic, kGemini };

/// "openai", "openrouter", "anthropic", "gemini".
std::string_view FlavorName(Flavor flavor);

/// Which kind of call: a completion, a model listing, OpenRouter's GET /key.
enum class Endpoint { kChat, kModels, kKey };

/// The text every `ok` answers unless the step names another.
inline constexpr std::string_view kMockDefaultText = "Hello from the mock upstream.";

/// The facts about one request that shape its answer.
struct MockCall {
  Flavor flavor = Flavor::kOpenAi;
  Endpoint endpoint = Endpoint::kChat;
  std::string model;           ///< from the body ("model") or the Gemini path
  bool stream = false;         ///< SSE asked for ("stream": true, :streamGenerateContent)
  bool gemini_sse = true;      ///< :streamGenerateContent with alt=sse (else a JSON array)
  bool include_usage = false;  ///< OpenAI stream_options.include_usage
  std::string key;             ///< the caller's key (only echo_key and masked texts use it)
  int prompt_tokens = 1;       ///< a deterministic estimate from the body size
  uint64_t id = 0;             ///< makes response ids unique per server
  std::chrono::system_clock::time_point now;  ///< for rate-limit reset stamps
};

/// How to write one answer. The server applies it in this order: wait `delay_ms`;
/// then `hang` or `drop`, or headers + `body`, or headers + `pieces` one chunk each
/// (`gap_ms` apart), ending with the chunked terminator unless `cut`.
struct MockReply {
  int status = 200;
  std::map<std::string, std::string> headers;
  std::string content_type = "application/json";
  std::string body;
  bool chunked = false;
  std::vector<std::string> pieces;  ///< each a whole SSE event (or a slice of a body)
  int gap_ms = 0;
  bool cut = false;
  /// After `pieces`: write `repeat` again and again, `repeat_bytes` in all (0: until the
  /// client leaves or the server stops). For endless streams and huge bodies.
  std::string repeat;
  int64_t repeat_bytes = 0;
  int delay_ms = 0;
  bool hang = false;
  int hang_ms = 0;  ///< 0 = until the client leaves or the server stops
  bool drop = false;
};

/// The answer to `call` under `step`. Never fails: every step has a shape per flavor.
MockReply BuildMockReply(const MockCall& call, const MockStep& step);

}  // namespace kpm::testing
