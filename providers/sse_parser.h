#pragma once
/// SseParser: an incremental Server-Sent Events parser (the WHATWG event-stream
/// format as the model APIs use it). Bytes arrive in arbitrary pieces; complete
/// events come out. Lines end in LF, CRLF or a lone CR (a CRLF split across two
/// pieces is one line end); a blank line ends an event; lines starting with ':' are
/// comments; several `data:` lines are joined with '\n'; `event:` names the event.
/// Not thread-safe: one parser per stream.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace kpm::providers {

struct SseEvent {
  std::string event;  ///< the `event:` name; empty when none was given
  std::string data;   ///< the `data:` lines joined with '\n' (no trailing '\n')
  std::string id;     ///< the `id:` value, if any
};

class SseParser {
 public:
  /// Return false to stop: Feed() then returns false and ignores the rest of the chunk.
  using EventCallback = std::function<bool(const SseEvent& event)>;

  /// Parses `chunk`, calling `on_event` for every event it completes. Events with no
  /// data lines are not dispatched (as in the WHATWG algorithm). Returns false if
  /// `on_event` asked to stop.
  bool Feed(std::string_view chunk, const EventCallback& on_event);

  /// Comment lines seen so far (e.g. OpenRouter's ": OPENROUTER PROCESSING").
  size_t comments() const { return comments_; }
  /// True when some bytes of an unfinished event are buffered (a stream that ends
  /// here was cut mid-event).
  bool has_partial_event() const { return !line_.empty() || has_data_ || !event_.event.empty(); }

 private:
  /// Handles one complete line; returns false if the callback asked to stop.
  bool Line(std::string_view line, const EventCallback& on_event);

  std::string line_;         // the current, unfinished line
  bool skip_lf_ = false;     // the last byte was '\r': a following '\n' belongs to it
  bool has_data_ = false;    // the current event has had a data: line
  SseEvent event_;           // the event being built
  size_t comments_ = 0;
};

}  // namespace kpm::providers
