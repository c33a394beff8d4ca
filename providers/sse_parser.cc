#include "providers/sse_parser.h"

#include <utility>

namespace kpm::providers {

bool SseParser::Overflow(std::string what) {
  overflow_ = std::move(what);
  line_.clear();
  line_.shrink_to_fit();
  event_ = SseEvent{};
  has_data_ = false;
  return false;
}

bool SseParser::Feed(std::string_view chunk, const EventCallback& on_event) {
  if (!overflow_.empty()) return false;
  size_t start = 0;  // start of the bytes of `chunk` not yet copied into line_
  for (size_t i = 0; i < chunk.size(); ++i) {
    char c = chunk[i];
    if (c != '\r' && c != '\n') {
      skip_lf_ = false;
      continue;
    }
    if (c == '\n' && skip_lf_) {  // second half of a CRLF
      skip_lf_ = false;
      start = i + 1;
      continue;
    }
    skip_lf_ = (c == '\r');
    if (line_.size() + (i - start) > limits_.max_line_bytes) {
      return Overflow("a stream line over " + CapText(limits_.max_line_bytes));
    }
    bool ok;
    if (line_.empty()) {
      ok = Line(chunk.substr(start, i - start), on_event);
    } else {
      line_.append(chunk.substr(start, i - start));
      std::string line = std::move(line_);
      line_.clear();
      ok = Line(line, on_event);
    }
    start = i + 1;
    if (!ok) return false;
  }
  if (line_.size() + (chunk.size() - start) > limits_.max_line_bytes) {
    return Overflow("a stream line over " + CapText(limits_.max_line_bytes));
  }
  line_.append(chunk.substr(start));
  return true;
}

bool SseParser::Line(std::string_view line, const EventCallback& on_event) {
  if (line.empty()) {  // blank line: dispatch
    bool dispatch = has_data_;
    SseEvent event = std::move(event_);
    event_ = SseEvent{};
    has_data_ = false;
    if (!dispatch) return true;
    return on_event(event);
  }
  if (line.front() == ':') return true;  // a comment (e.g. OpenRouter's ": OPENROUTER PROCESSING")
  std::string_view field = line;
  std::string_view value;
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (event_.data.size() + (has_data_ ? 1 : 0) + value.size() > limits_.max_event_bytes) {
      return Overflow("an event's data over " + CapText(limits_.max_event_bytes));
    }
    if (has_data_) event_.data.push_back('\n');
    event_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_.event.assign(value);
  } else if (field == "id") {
    event_.id.assign(value);
  }
  // `retry` and unknown fields are ignored.
  return true;
}

}  // namespace kpm::providers
