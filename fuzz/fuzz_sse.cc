// libFuzzer target: providers/sse_parser.h SseParser, which reads every streamed
// upstream answer. The input is split into a byte stream and a chunking plan (the
// plan is read from the end of the input by FuzzedDataProvider); the stream is fed
// in those random pieces. Checks:
//   - the events do not depend on how the stream was cut (a CRLF split across two
//     pieces is one line end), also after a final blank line flushes what was buffered;
//   - they equal those of a small reference parser written from the header's contract
//     (LF / CRLF / lone CR line ends, blank line dispatches, ':' comments, data lines
//     joined by '\n', one leading space after the colon dropped, events without data
//     not dispatched);
//   - a callback that returns false stops the stream: Feed returns false and no later
//     event is delivered;
//   - no exception escapes.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "providers/sse_parser.h"

#include "fuzz/fuzz_check.h"

namespace {

using kpm::fuzz::Fail;
using kpm::fuzz::g_input;

using kpm::providers::SseEvent;
using kpm::providers::SseParser;




bool Same(const SseEvent& a, const SseEvent& b) { return a.event == b.event && a.data == b.data && a.id == b.id; }

struct Outcome {
  std::vector<SseEvent> events;
};

// The reference: whole-stream, obviously correct, per the header comment.
Outcome Reference(std::string_view s) {
  Outcome out;
  SseEvent ev;
  bool has_data = false;
  auto line = [&](std::string_view l) {
    if (l.empty()) {
      if (has_data) out.events.push_back(ev);
      ev = SseEvent{};
      has_data = false;
      return;
    }
    if (l[0] == ':') return;
    std::string_view field = l, value;
    if (size_t c = l.find(':'); c != std::string_view::npos) {
      field = l.substr(0, c);
      value = l.substr(c + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      if (has_data) ev.data += '\n';
      ev.data.append(value);
      has_data = true;
    } else if (field == "event") {
      ev.event = std::string(value);
    } else if (field == "id") {
      ev.id = std::string(value);
    }
  };
  size_t start = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '\r' || s[i] == '\n') {
      line(s.substr(start, i - start));
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      start = i + 1;
    }
    ++i;
  }
  return out;
}

Outcome FeedInPieces(std::string_view s, const std::vector<size_t>& cuts) {
  Outcome out;
  SseParser p;
  size_t pos = 0;
  auto collect = [&out](const SseEvent& e) {
    out.events.push_back(e);
    return true;
  };
  for (size_t n : cuts) {
    if (pos >= s.size()) break;
    n = std::min(n, s.size() - pos);
    CHECK(p.Feed(s.substr(pos, n), collect));
    pos += n;
  }
  if (pos < s.size()) CHECK(p.Feed(s.substr(pos), collect));
  CHECK(p.Feed("\n\n", collect));  // flushes an event left unfinished by the stream
  return out;
}

void Compare(const Outcome& want, const Outcome& got, const char* what) {
  if (want.events.size() != got.events.size()) {
    Fail(std::string(what) + ": " + std::to_string(got.events.size()) + " events, expected " +
         std::to_string(want.events.size()));
  }
  for (size_t i = 0; i < want.events.size(); ++i) {
    if (!Same(want.events[i], got.events[i])) Fail(std::string(what) + ": event " + std::to_string(i) + " differs");
  }
}

void Run(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  // The plan: up to 64 piece sizes from the tail of the input (0-sized pieces included:
  // an empty Feed must be harmless), the rest is the stream.
  std::vector<size_t> cuts;
  const size_t n_cuts = fdp.ConsumeIntegralInRange<size_t>(0, 64);
  for (size_t i = 0; i < n_cuts && fdp.remaining_bytes() > 0; ++i) {
    cuts.push_back(fdp.ConsumeIntegralInRange<size_t>(0, 32));
  }
  const size_t stop_after = fdp.ConsumeIntegralInRange<size_t>(0, 8);
  const std::string stream = fdp.ConsumeRemainingBytesAsString();

  const Outcome want = Reference(stream);
  const Outcome flushed = Reference(stream + "\n\n");  // FeedInPieces ends with a blank line
  Compare(flushed, FeedInPieces(stream, {}), "whole stream");
  Compare(flushed, FeedInPieces(stream, cuts), "random pieces");
  std::vector<size_t> bytewise(stream.size(), 1);
  Compare(flushed, FeedInPieces(stream, bytewise), "byte by byte");

  // Stopping: the callback refuses event #stop_after; nothing after it is delivered.
  if (stop_after < want.events.size()) {
    SseParser p;
    size_t seen = 0;
    bool stopped = false;
    auto cb = [&](const SseEvent& e) {
      CHECK(!stopped);
      CHECK(Same(e, want.events[seen]));
      ++seen;
      if (seen == stop_after + 1) {
        stopped = true;
        return false;
      }
      return true;
    };
    size_t pos = 0;
    bool result = true;
    for (size_t k = 0; pos < stream.size() && result; ++k) {
      size_t n = k < cuts.size() ? cuts[k] : stream.size() - pos;
      n = std::min(n, stream.size() - pos);
      result = p.Feed(std::string_view(stream).substr(pos, n), cb);
      pos += n;
    }
    CHECK(stopped);
    CHECK(!result);
    CHECK(seen == stop_after + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return kpm::fuzz::RunOne(data, size, Run);
}
