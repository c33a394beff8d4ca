#pragma once
/// Size caps on what an upstream may send, in one place (docs/providers.md "Caps" says
/// why each value). Past a cap the transfer is stopped, so memory stays bounded whatever
/// the upstream does, and the attempt ends as a server_error that names the cap.
/// Header-only: sse_parser.cc and curl_http_client.cc use it without linking anything.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace kpm::providers {

inline constexpr size_t kKiB = size_t{1} << 10;
inline constexpr size_t kMiB = size_t{1} << 20;

/// The whole response header block (every 1xx block and the final one together).
inline constexpr size_t kMaxHeaderBytes = 256 * kKiB;
/// A non-2xx body, collected for its error object.
inline constexpr size_t kMaxErrorBodyBytes = 1 * kMiB;
/// A 2xx body read whole: a GET /models listing, a `stream: false` completion.
inline constexpr size_t kMaxWholeBodyBytes = 32 * kMiB;
/// One line of an SSE stream (data, comment or field).
inline constexpr size_t kMaxSseLineBytes = 1 * kMiB;
/// One SSE event's data, all its `data:` lines joined.
inline constexpr size_t kMaxSseEventBytes = 4 * kMiB;
/// The answer text, whatever max_tokens says.
inline constexpr size_t kMaxAnswerBytes = 16 * kMiB;
/// The answer text is allowed at least this much...
inline constexpr size_t kMinAnswerCapBytes = 1 * kMiB;
/// ...and this many bytes per requested token (a token is ~4 bytes of text).
inline constexpr size_t kAnswerBytesPerToken = 64;

/// The answer-text cap of one completion: max(1 MiB, max_tokens x 64 B), never over
/// 16 MiB; 16 MiB when max_tokens is unset or not positive.
inline size_t AnswerCapBytes(std::optional<int> max_tokens) {
  if (!max_tokens || *max_tokens <= 0) return kMaxAnswerBytes;
  uint64_t by_tokens = static_cast<uint64_t>(*max_tokens) * kAnswerBytesPerToken;
  uint64_t cap = by_tokens < kMinAnswerCapBytes ? kMinAnswerCapBytes : by_tokens;
  return cap > kMaxAnswerBytes ? kMaxAnswerBytes : static_cast<size_t>(cap);
}

/// A whole `stream: false` completion body: its answer's cap twice over (JSON escaping)
/// plus 1 MiB of envelope, never over 16 MiB. A body is built by doubling and scrubbed
/// into a copy, so this bounds what one such attempt can hold to about 3x the cap.
inline size_t CompletionBodyCapBytes(std::optional<int> max_tokens) {
  const size_t cap = 2 * AnswerCapBytes(max_tokens) + kMiB;
  return cap < kMaxAnswerBytes ? cap : kMaxAnswerBytes;
}

/// "256 KiB", "1 MiB", "1234 bytes": a cap as a message shows it.
inline std::string CapText(size_t bytes) {
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  if (bytes >= kKiB && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + " KiB";
  return std::to_string(bytes) + " bytes";
}

}  // namespace kpm::providers
