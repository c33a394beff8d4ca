#include "providers/sse_parser.h"

#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

namespace kpm::providers {
namespace {

std::vector<SseEvent> ParseInPieces(const std::string& stream, const std::vector<size_t>& cuts) {
  SseParser parser;
  std::vector<SseEvent> events;
  size_t prev = 0;
  auto collect = [&](const SseEvent& e) {
    events.push_back(e);
    return true;
  };
  for (size_t cut : cuts) {
    REQUIRE(parser.Feed(std::string_view(stream).substr(prev, cut - prev), collect));
    prev = cut;
  }
  REQUIRE(parser.Feed(std::string_view(stream).substr(prev), collect));
  return events;
}

const char kStream[] =
    ": OPENROUTER PROCESSING\r\n"
    "\r\n"
    "data: {\"a\":1}\r\n"
    "\r\n"
    "event: content_block_delta\n"
    "data: first\n"
    "data: second\n"
    "\n"
    "event:ping\n"
    "data:{}\n"
    "id: 7\n"
    "\n"
    "data: lone-cr\r\r"
    "event: only-a-name\n"
    "\n"
    "data\n"
    "\n"
    "data: [DONE]\r\n\r\n";

void CheckEvents(const std::vector<SseEvent>& events) {
  REQUIRE(events.size() == 6);
  CHECK(events[0].event.empty());
  CHECK(events[0].data == "{\"a\":1}");
  CHECK(events[1].event == "content_block_delta");
  CHECK(events[1].data == "first\nsecond");
  CHECK(events[2].event == "ping");
  CHECK(events[2].data == "{}");
  CHECK(events[2].id == "7");
  CHECK(events[3].data == "lone-cr");
  // "event: only-a-name" has no data: not dispatched; a bare "data" line is an empty
  // data line, so that event is dispatched with empty data.
  CHECK(events[4].data.empty());
  CHECK(events[5].data == "[DONE]");
}

TEST_CASE("SSE parser reads LF, CRLF and CR lines, comments, names and multi-line data", "[unit][providers]") {
  CheckEvents(ParseInPieces(kStream, {}));
}

TEST_CASE("SSE parser gives the same events whatever the chunk boundaries", "[unit][providers]") {
  const std::string stream = kStream;
  SECTION("one byte at a time") {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
    CheckEvents(ParseInPieces(stream, cuts));
  }
  SECTION("every single split point, including inside CRLF") {
    for (size_t i = 1; i < stream.size(); ++i) CheckEvents(ParseInPieces(stream, {i}));
  }
  SECTION("random split points") {
    std::mt19937 rng(12345);
    for (int round = 0; round < 300; ++round) {
      std::vector<size_t> cuts;
      std::uniform_int_distribution<size_t> pos(0, stream.size());
      size_t n = rng() % 8;
      for (size_t i = 0; i < n; ++i) cuts.push_back(pos(rng));
      std::sort(cuts.begin(), cuts.end());
      CheckEvents(ParseInPieces(stream, cuts));
    }
  }
}

TEST_CASE("SSE parser skips comments and stops when the callback says so", "[unit][providers]") {
  SseParser parser;
  std::vector<std::string> seen;
  bool more = parser.Feed(": keep-alive\n\ndata: 1\n\ndata: 2\n\n", [&](const SseEvent& e) {
    seen.push_back(e.data);
    return false;
  });
  CHECK_FALSE(more);
  CHECK(seen == std::vector<std::string>{"1"});
}

TEST_CASE("SSE parser holds an event cut before its blank line until the line comes", "[unit][providers]") {
  SseParser parser;
  std::vector<std::string> seen;
  auto collect = [&](const SseEvent& e) { return seen.push_back(e.data), true; };
  REQUIRE(parser.Feed("data: {\"x\":", collect));
  CHECK(seen.empty());
  REQUIRE(parser.Feed("1}\n\n", collect));
  CHECK(seen == std::vector<std::string>{"{\"x\":1}"});
}

/// Feeds `stream` in pieces of `piece` bytes to a parser with small caps; the data of
/// every event seen, and the overflow message ("" when none).
std::pair<std::vector<std::string>, std::string> ParseCapped(const std::string& stream, size_t piece) {
  SseParser parser(SseLimits{.max_line_bytes = 16, .max_event_bytes = 24});
  std::vector<std::string> data;
  for (size_t pos = 0; pos < stream.size(); pos += piece) {
    bool more = parser.Feed(std::string_view(stream).substr(pos, piece), [&](const SseEvent& e) {
      data.push_back(e.data);
      return true;
    });
    if (!more) break;
  }
  return {data, parser.overflow()};
}

TEST_CASE("SSE parser stops at a line over its cap, wherever the chunks are cut", "[unit][providers]") {
  // 16 bytes is the cap: "data: 0123456789" is exactly 16, one more byte is over.
  const std::string stream = "data: 0123456789\n\ndata: a\n\ndata: 01234567890\n\ndata: never\n\n";
  for (size_t piece : {size_t{1}, size_t{3}, size_t{7}, stream.size()}) {
    INFO("pieces of " << piece);
    auto [data, overflow] = ParseCapped(stream, piece);
    CHECK(data == std::vector<std::string>{"0123456789", "a"});
    CHECK(overflow == "a stream line over 16 bytes");
  }
  SECTION("a line that never ends is stopped too, and nothing more is taken") {
    SseParser parser(SseLimits{.max_line_bytes = 16, .max_event_bytes = 24});
    auto ignore = [](const SseEvent&) { return true; };
    CHECK(parser.Feed("data: 0123456789", ignore));
    CHECK_FALSE(parser.Feed("x", ignore));
    CHECK(parser.overflow() == "a stream line over 16 bytes");
    CHECK_FALSE(parser.Feed("\n\ndata: 1\n\n", ignore));
  }
}

TEST_CASE("SSE parser stops at an event whose data is over its cap", "[unit][providers]") {
  // Three 8-byte data lines joined with '\n' are 26 bytes: over 24.
  const std::string stream = "data: 12345678\ndata: 12345678\n\ndata: 12345678\ndata: 12345678\ndata: 12345678\n\n";
  for (size_t piece : {size_t{1}, size_t{5}, stream.size()}) {
    INFO("pieces of " << piece);
    auto [data, overflow] = ParseCapped(stream, piece);
    CHECK(data == std::vector<std::string>{"12345678\n12345678"});
    CHECK(overflow == "an event's data over 24 bytes");
  }
}

TEST_CASE("SSE parser's default caps are 1 MiB a line and 4 MiB an event", "[unit][providers]") {
  SseParser parser;
  auto ignore = [](const SseEvent&) { return true; };
  std::string line = "data: " + std::string(kMaxSseLineBytes - 6, 'x');
  CHECK(parser.Feed(line + "\n", ignore));
  CHECK(parser.overflow().empty());
  CHECK_FALSE(parser.Feed(line + "x\n", ignore));
  CHECK(parser.overflow() == "a stream line over 1 MiB");
}

}  // namespace
}  // namespace kpm::providers
