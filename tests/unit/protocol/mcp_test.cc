#include "protocol/mcp.h"

#include <catch2/catch.hpp>

namespace kpm::protocol {
namespace {

TEST_CASE("protocol versions we speak are echoed, others get the newest", "[unit][protocol]") {
  CHECK(NegotiateProtocolVersion("2025-11-25") == "2025-11-25");
  CHECK(NegotiateProtocolVersion("2025-06-18") == "2025-06-18");
  CHECK(NegotiateProtocolVersion("2025-03-26") == "2025-03-26");
  CHECK(NegotiateProtocolVersion("2024-11-05") == "2025-11-25");
  CHECK(NegotiateProtocolVersion("2026-07-28") == "2025-11-25");
  CHECK(NegotiateProtocolVersion("") == "2025-11-25");
}

TEST_CASE("initialize params need a string protocolVersion", "[unit][protocol]") {
  CHECK(ParseInitializeParams({{"protocolVersion", "2025-06-18"}}).has_value());
  CHECK_FALSE(ParseInitializeParams(nullptr).has_value());
  CHECK_FALSE(ParseInitializeParams({{"protocolVersion", 3}}).has_value());
}

TEST_CASE("the initialize result advertises tools and logging", "[unit][protocol]") {
  Json j = ToJson(InitializeResult{"2025-06-18", "keypool-mcp", "1.2.3", ""});
  CHECK(j["protocolVersion"] == "2025-06-18");
  CHECK(j["capabilities"]["tools"]["listChanged"] == false);
  CHECK(j["capabilities"]["logging"].is_object());
  CHECK(j["serverInfo"]["name"] == "keypool-mcp");
  CHECK(j["serverInfo"]["version"] == "1.2.3");
  CHECK_FALSE(j.contains("instructions"));
}

TEST_CASE("cursors round-trip and reject anything else", "[unit][protocol]") {
  CHECK(DecodeCursor(EncodeCursor(0)) == std::optional<std::size_t>(0));
  CHECK(DecodeCursor(EncodeCursor(42)) == std::optional<std::size_t>(42));
  CHECK_FALSE(DecodeCursor("").has_value());
  CHECK_FALSE(DecodeCursor("42").has_value());
  CHECK_FALSE(DecodeCursor(EncodeCursor(4) + "x").has_value());
  CHECK_FALSE(DecodeCursor("kpm1.-1").has_value());
  CHECK_FALSE(DecodeCursor("kpm1.99999999999999999999999").has_value());
}

TEST_CASE("tools/call params are checked and the progress token is picked up",
          "[unit][protocol]") {
  auto p = ParseCallToolParams(
      {{"name", "complete"}, {"arguments", {{"prompt", "hi"}}}, {"_meta", {{"progressToken", 9}}}});
  REQUIRE(p.has_value());
  CHECK(p->name == "complete");
  CHECK(p->arguments["prompt"] == "hi");
  CHECK(p->progress_token == 9);

  auto no_args = ParseCallToolParams({{"name", "key_status"}});
  REQUIRE(no_args.has_value());
  CHECK(no_args->arguments == Json::object());
  CHECK(no_args->progress_token.is_null());

  CHECK_FALSE(ParseCallToolParams(nullptr).has_value());
  CHECK_FALSE(ParseCallToolParams({{"name", 1}}).has_value());
  CHECK_FALSE(ParseCallToolParams({{"name", "x"}, {"arguments", "str"}}).has_value());
}

TEST_CASE("a tool result has text content and optional structure and error flag",
          "[unit][protocol]") {
  Json ok = ToJson(CallToolResult{"hello", nullptr, false});
  CHECK(ok["content"][0]["type"] == "text");
  CHECK(ok["content"][0]["text"] == "hello");
  CHECK_FALSE(ok.contains("structuredContent"));
  CHECK_FALSE(ok.contains("isError"));

  Json err = ToJson(CallToolResult{"boom", {{"error", {{"class", "bad_request"}}}}, true});
  CHECK(err["isError"] == true);
  CHECK(err["structuredContent"]["error"]["class"] == "bad_request");
}

TEST_CASE("log levels parse the MCP names only", "[unit][protocol]") {
  for (const char* name :
       {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}) {
    auto l = ParseLogLevel(name);
    REQUIRE(l.has_value());
    CHECK(LogLevelName(*l) == name);
  }
  CHECK_FALSE(ParseLogLevel("warn").has_value());
  CHECK_FALSE(ParseSetLevelParams({{"level", "verbose"}}).has_value());
  CHECK_FALSE(ParseSetLevelParams({{"level", 1}}).has_value());
  CHECK(ParseSetLevelParams({{"level", "error"}}).value() == LogLevel::kError);
}

TEST_CASE("progress params omit what is absent", "[unit][protocol]") {
  Json p = ProgressParams("tok", 12, std::nullopt, "");
  CHECK(p["progressToken"] == "tok");
  CHECK(p["progress"] == 12);
  CHECK_FALSE(p.contains("total"));
  CHECK_FALSE(p.contains("message"));
  Json q = ProgressParams(3, 1, 10.0, "openai#1: 1 chars");
  CHECK(q["total"] == 10);
  CHECK(q["message"] == "openai#1: 1 chars");
}

TEST_CASE("cancelled notifications yield their request id", "[unit][protocol]") {
  CHECK(ParseCancelledRequestId({{"requestId", 5}}) == std::optional<Json>(5));
  CHECK(ParseCancelledRequestId({{"requestId", "a"}, {"reason", "x"}}) == std::optional<Json>("a"));
  CHECK_FALSE(ParseCancelledRequestId({{"requestId", nullptr}}).has_value());
  CHECK_FALSE(ParseCancelledRequestId(nullptr).has_value());
}

}  // namespace
}  // namespace kpm::protocol
