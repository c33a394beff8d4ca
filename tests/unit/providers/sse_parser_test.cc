#include "providers/sse_parser.h"

#include <algorithm>
#include <random>
#include <string>
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

TEST_CASE("SSE parser counts comments and stops when the callback says so", "[unit][providers]") {
  SseParser parser;
  int seen = 0;
  bool more = parser.Feed(": keep-alive\n\ndata: 1\n\ndata: 2\n\n", [&](const SseEvent&) {
    ++seen;
    return false;
  });
  CHECK_FALSE(more);
  CHECK(seen == 1);
  CHECK(parser.comments() == 1);
}

TEST_CASE("SSE parser reports an event cut before its blank line", "[unit][providers]") {
  SseParser parser;
  int seen = 0;
  REQUIRE(parser.Feed("data: {\"x\":", [&](const SseEvent&) { return ++seen, true; }));
  CHECK(parser.has_partial_event());
  CHECK(seen == 0);
  REQUIRE(parser.Feed("1}\n\n", [&](const SseEvent&) { return ++seen, true; }));
  CHECK_FALSE(parser.has_partial_event());
  CHECK(seen == 1);
}

}  // namespace
}  // namespace kpm::providers
