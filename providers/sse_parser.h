#pragma once
/// SseParser: an incremental Server-Sent Events parser (the WHATWG event-stream
/// format as the model APIs use it). Bytes arrive in arbitrary pieces; complete
/// events come out. Lines end in LF, CRLF or a lone CR (a CRLF split across two
/// pieces is one line end); a blank line ends an event; lines starting with ':' are
/// comments; several `data:` lines are joined with '\n'; `event:` names the event.
/// A line or an event's data past its cap (caps.h) stops the stream: memory stays
/// bounded when an upstream never sends a line end or a blank line.
/// Not thread-safe: one parser per stream.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "providers/caps.h"

namespace kpm::providers {

struct SseLimits {
  size_t max_line_bytes = kMaxSseLineBytes;    ///< one line, without its line end
  size_t max_event_bytes = kMaxSseEventBytes;  ///< one event's data, its lines joined
};

struct SseEvent {
  std::string event;  ///< the `event:` name; empty when none was given
  std::string data;   ///< the `data:` lines joined with '\n' (no trailing '\n')
  std::string id;     ///< the `id:` value, if any
};

class SseParser {
 public:
  /// Return false to stop: Feed() then returns false and ignores the rest of the chunk.
  using EventCallback = std::function<bool(const SseEvent& event)>;

  explicit SseParser(SseLimits limits = {}) : limits_(limits) {}

  /// Parses `chunk`, calling `on_event` for every event it completes. Events with no
  /// data lines are not dispatched (as in the WHATWG algorithm). Returns false if
  /// `on_event` asked to stop or a cap was passed (overflow() then says which); the
  /// parser then takes nothing more.
  bool Feed(std::string_view chunk, const EventCallback& on_event);

  /// Empty, or the cap that stopped the stream: "a stream line over 1 MiB", "an
  /// event's data over 4 MiB". Whatever the chunk boundaries, the same input passes a
  /// cap at the same line, after the same events.
  const std::string& overflow() const { return overflow_; }

 private:
  /// Handles one complete line; returns false if the callback asked to stop.
  bool Line(std::string_view line, const EventCallback& on_event);
  /// Records a passed cap; returns false.
  bool Overflow(std::string what);

  SseLimits limits_;
  std::string overflow_;     // non-empty once a cap was passed
  std::string line_;         // the current, unfinished line
  bool skip_lf_ = false;     // the last byte was '\r': a following '\n' belongs to it
  bool has_data_ = false;    // the current event has had a data: line
  SseEvent event_;           // the event being built
};

}  // namespace kpm::providers
