#include "protocol/jsonrpc.h"

#include <string>

#include <catch2/catch.hpp>

namespace kpm::protocol {
namespace {

using Kind = Message::Kind;

TEST_CASE("a well-formed request decodes with its id, method and params", "[unit][protocol]") {
  Message m = Decode(R"({"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"cursor":"x"}})");
  REQUIRE(m.kind == Kind::kRequest);
  CHECK(m.id == 7);
  CHECK(m.method == "tools/list");
  CHECK(m.params["cursor"] == "x");
}

TEST_CASE("string and number ids are echoed exactly", "[unit][protocol]") {
  struct Row {
    const char* line;
    const char* id_on_wire;
  };
  const Row rows[] = {
      {R"({"jsonrpc":"2.0","id":"abc-1","method":"ping"})", R"("id":"abc-1")"},
      {R"({"jsonrpc":"2.0","id":"1","method":"ping"})", R"("id":"1")"},
      {R"({"jsonrpc":"2.0","id":0,"method":"ping"})", R"("id":0)"},
      {R"({"jsonrpc":"2.0","id":-5,"method":"ping"})", R"("id":-5)"},
      {R"({"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"})",
       R"("id":18446744073709551615)"},
      {R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})", R"("id":1.5)"},
  };
  for (const auto& row : rows) {
    INFO(row.line);
    Message m = Decode(row.line);
    REQUIRE(m.kind == Kind::kRequest);
    const std::string reply = EncodeResult(m.id, Json::object());
    CHECK(reply.find(row.id_on_wire) != std::string::npos);
  }
}

TEST_CASE("malformed lines decode to the error reply they deserve", "[unit][protocol]") {
  struct Row {
    const char* line;
    int code;
    Json id;
  };
  const Row rows[] = {
      {"{not json", kParseError, nullptr},
      {"", kParseError, nullptr},
      {R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])", kInvalidRequest, nullptr},
      {"[]", kInvalidRequest, nullptr},
      {"42", kInvalidRequest, nullptr},
      {R"("hello")", kInvalidRequest, nullptr},
      {R"({"jsonrpc":"2.0","id":null,"method":"ping"})", kInvalidRequest, nullptr},
      {R"({"jsonrpc":"2.0","id":true,"method":"ping"})", kInvalidRequest, nullptr},
      {R"({"jsonrpc":"2.0","id":{"a":1},"method":"ping"})", kInvalidRequest, nullptr},
      {R"({"jsonrpc":"2.0","id":[1],"method":"ping"})", kInvalidRequest, nullptr},
      {R"({"id":3,"method":"ping"})", kInvalidRequest, 3},
      {R"({"jsonrpc":"1.0","id":3,"method":"ping"})", kInvalidRequest, 3},
      {R"({"jsonrpc":"2.0","id":"x","method":5})", kInvalidRequest, "x"},
      {R"({"jsonrpc":"2.0","id":4,"method":"ping","params":"str"})", kInvalidRequest, 4},
      {R"({"jsonrpc":"2.0","id":4})", kInvalidRequest, 4},
      {R"({"jsonrpc":"2.0"})", kInvalidRequest, nullptr},
  };
  for (const auto& row : rows) {
    INFO(row.line);
    Message m = Decode(row.line);
    REQUIRE(m.kind == Kind::kInvalid);
    CHECK(m.error.code == row.code);
    CHECK(m.id == row.id);
    // And the reply is well formed JSON-RPC on one line.
    Json reply = Json::parse(EncodeError(m.id, m.error));
    CHECK(reply["jsonrpc"] == "2.0");
    CHECK(reply["error"]["code"] == row.code);
    CHECK(reply.contains("id"));
  }
}

TEST_CASE("a line nested deeper than the limit is -32600 instead of a stack overflow", "[unit][protocol]") {
  // Found by fuzz_jsonrpc_decode: copying 60 000 nested arrays overflowed the stack.
  const size_t deep = 70000;
  std::string line = R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"x":)" + std::string(deep, '[') +
                     std::string(deep, ']') + "}}";
  Message m = Decode(line);
  REQUIRE(m.kind == Kind::kInvalid);
  CHECK(m.error.code == kInvalidRequest);
  CHECK(m.id.is_null());

  SECTION("brackets inside strings do not count, and ordinary nesting passes") {
    std::string ok = R"({"jsonrpc":"2.0","id":2,"method":"x","params":{"s":")" + std::string(500, '[') +
                     R"(","a":[[[[[[[[[[1]]]]]]]]]]}})";
    Message n = Decode(ok);
    CHECK(n.kind == Kind::kRequest);
  }
}

TEST_CASE("notifications are never answered, even when malformed", "[unit][protocol]") {
  Message ok = Decode(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  CHECK(ok.kind == Kind::kNotification);
  CHECK(ok.method == "notifications/initialized");
  CHECK(ok.params.is_null());

  for (const char* line : {
           R"({"method":"notifications/initialized"})",
           R"({"jsonrpc":"2.0","method":42})",
           R"({"jsonrpc":"2.0","method":"x","params":7})",
       }) {
    INFO(line);
    CHECK(Decode(line).kind == Kind::kIgnored);
  }
}

TEST_CASE("responses sent by the client are ignored", "[unit][protocol]") {
  CHECK(Decode(R"({"jsonrpc":"2.0","id":1,"result":{}})").kind == Kind::kIgnored);
  CHECK(Decode(R"({"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}})").kind ==
        Kind::kIgnored);
}

TEST_CASE("error replies are built from one set of factories", "[unit][protocol]") {
  CHECK(RpcError::ParseError().code == -32700);
  CHECK(RpcError::InvalidRequest().code == -32600);
  CHECK(RpcError::MethodNotFound("server/discover").code == -32601);
  CHECK(RpcError::MethodNotFound("server/discover").message.find("server/discover") !=
        std::string::npos);
  CHECK(RpcError::InvalidParams("bad cursor").code == -32602);
  CHECK(RpcError::InternalError().code == -32603);
  CHECK(RpcError::InternalError().message == "internal error");

  RpcError with_data = RpcError::InvalidParams("x");
  with_data.data = {{"field", "name"}};
  Json reply = Json::parse(EncodeError(1, with_data));
  CHECK(reply["error"]["data"]["field"] == "name");
  CHECK_FALSE(Json::parse(EncodeError(1, RpcError::InternalError()))["error"].contains("data"));
}

TEST_CASE("serialisation survives invalid UTF-8 and never emits a newline", "[unit][protocol]") {
  Json result = {{"text", std::string("bad \xff\xfe utf8\nsecond line")}};
  std::string line;
  REQUIRE_NOTHROW(line = EncodeResult("id", result));
  CHECK(line.find('\n') == std::string::npos);
  Json back = Json::parse(line, nullptr, false);
  REQUIRE_FALSE(back.is_discarded());
  CHECK(back["result"]["text"].get<std::string>().find("\xEF\xBF\xBD") != std::string::npos);
}

TEST_CASE("notifications encode without an id and omit null params", "[unit][protocol]") {
  Json n = Json::parse(EncodeNotification("notifications/progress", {{"progress", 1}}));
  CHECK_FALSE(n.contains("id"));
  CHECK(n["method"] == "notifications/progress");
  CHECK(n["params"]["progress"] == 1);
  CHECK_FALSE(Json::parse(EncodeNotification("x", nullptr)).contains("params"));
}

TEST_CASE("id keys tell a string id from a number id", "[unit][protocol]") {
  CHECK(IdKey(Json(1)) != IdKey(Json("1")));
  CHECK(IdKey(Json(1)) == IdKey(Json::parse("1")));
}

}  // namespace
}  // namespace kpm::protocol
