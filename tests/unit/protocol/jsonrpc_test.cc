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

TEST_CASE("a NUL byte makes the whole line a parse error instead of ending it early", "[unit][protocol]") {
  // nlohmann's lexer reads '\0' as the end of the input: the ping before it used to be
  // served and the request after it silently dropped.
  const std::string ping = R"({"jsonrpc":"2.0","id":1,"method":"ping"})";
  const std::string rows[] = {
      ping + std::string(1, '\0') + R"({"jsonrpc":"2.0","id":2,"method":"ping"})",
      ping + std::string(1, '\0'),
      std::string(1, '\0') + ping,
      std::string(R"({"jsonrpc":"2.0","id":1,"method":"pi)") + std::string(1, '\0') + R"(ng"})",
  };
  for (const std::string& line : rows) {
    INFO(Json(line).dump());
    Message m = Decode(line);
    REQUIRE(m.kind == Kind::kInvalid);
    CHECK(m.error.code == kParseError);
    CHECK(m.id.is_null());
    CHECK_THAT(m.error.message, Catch::Contains("NUL"));
  }
  // Written as an escape, U+0000 is ordinary string content.
  Message escaped = Decode(R"({"jsonrpc":"2.0","id":"a\u0000b","method":"ping"})");
  REQUIRE(escaped.kind == Kind::kRequest);
  CHECK(escaped.id == std::string("a\0b", 3));
}

TEST_CASE("number ids that do not fit 64 bits, fractions and exponents are echoed as written",
          "[unit][protocol]") {
  const char* ids[] = {
      "18446744073709551616",            // 2^64: one past uint64
      "18446744073709551617",            // rounds to the same double as 2^64
      "123456789012345678901234567890",  // a 128-bit counter
      "-9223372036854775809",            // one below int64
      "1.50", "1e2", "1E+2", "-0.0", "0.1e-7",
  };
  for (const char* id : ids) {
    INFO(id);
    const std::string wire = std::string("\"id\":") + id + ",";
    Message m = Decode(std::string(R"({"jsonrpc":"2.0","id":)") + id + R"(,"method":"ping"})");
    REQUIRE(m.kind == Kind::kRequest);
    CHECK(m.id.is_number());
    CHECK(m.id_text == id);
    const std::string result = EncodeResult(m.id, Json::object(), m.id_text);
    CHECK_THAT(result, Catch::Contains(wire));
    CHECK_FALSE(Json::parse(result, nullptr, false).is_discarded());
    CHECK_THAT(EncodeError(m.id, RpcError::InternalError(), m.id_text), Catch::Contains(wire));
    // Refused requests echo it too.
    Message bad = Decode(std::string(R"({"jsonrpc":"1.0","id":)") + id + R"(,"method":"ping"})");
    REQUIRE(bad.kind == Kind::kInvalid);
    CHECK_THAT(EncodeError(bad.id, bad.error, bad.id_text), Catch::Contains(wire));
  }
  SECTION("64-bit integers need no text: nlohmann holds them exactly") {
    for (const char* id : {"18446744073709551615", "-9223372036854775808", "0", "42"}) {
      Message m = Decode(std::string(R"({"jsonrpc":"2.0","id":)") + id + R"(,"method":"ping"})");
      REQUIRE(m.kind == Kind::kRequest);
      CHECK(m.id_text.empty());
      CHECK_THAT(EncodeResult(m.id, Json::object()), Catch::Contains(std::string("\"id\":") + id + ","));
    }
  }
  SECTION("the last of two ids wins, as in the parsed object") {
    Message m = Decode(R"({"jsonrpc":"2.0","id":1.5,"id":18446744073709551616.0,"method":"ping"})");
    REQUIRE(m.kind == Kind::kRequest);
    CHECK(m.id_text == "18446744073709551616.0");
  }
  SECTION("an id text that is not number text is never written") {
    CHECK_THAT(EncodeResult(Json(7), Json::object(), "1,\"x\":2"), Catch::Contains("\"id\":7,"));
  }
  SECTION("ids are keyed by value: 1.0 and 1.00 are one id") {
    CHECK(IdKey(Decode(R"({"jsonrpc":"2.0","id":1.0,"method":"x"})").id) ==
          IdKey(Decode(R"({"jsonrpc":"2.0","id":1.00,"method":"x"})").id));
  }
}

TEST_CASE("replies are the same bytes nlohmann would write", "[unit][protocol]") {
  const Json result = {{"content", Json::array({{{"type", "text"}, {"text", "hi"}}})}};
  for (const Json& id : {Json(7), Json("abc"), Json(nullptr), Json(-3)}) {
    CHECK(EncodeResult(id, result) == Json({{"jsonrpc", "2.0"}, {"id", id}, {"result", result}}).dump());
    const Json err = {{"code", -32601}, {"message", "method not found: x"}};
    CHECK(EncodeError(id, RpcError::MethodNotFound("x")) ==
          Json({{"jsonrpc", "2.0"}, {"id", id}, {"error", err}}).dump());
  }
}

TEST_CASE("the head of an over-long line gives back its top-level id", "[unit][protocol]") {
  const std::string pad(1000, 'x');
  struct Row {
    std::string head;
    Json id;
    std::string id_text;
  };
  const Row rows[] = {
      {R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":{"prompt":")" + pad, 7, ""},
      {R"({"id":"req-9","params":{"p":")" + pad, "req-9", ""},
      {R"({"params":{"id":5,"p":"x"},"id":9,"method":"x","p":")" + pad, 9, ""},
      {R"({"id":123456789012345678901234567890,"p":")" + pad, 1.2345678901234568e29,
       "123456789012345678901234567890"},
      // Not found, or not usable: id null.
      {R"({"params":{"id":5,"p":")" + pad, nullptr, ""},      // nested, not top level
      {R"({"jsonrpc":"2.0","method":"x","params":{"a":")" + pad, nullptr, ""},
      {R"({"jsonrpc":"2.0","id":12345)", nullptr, ""},         // the number may go on past the cut
      {R"({"jsonrpc":"2.0","id":1.5e)", nullptr, ""},
      {R"({"id":"cut in the mid)", nullptr, ""},               // the string may go on too
      {R"([{"jsonrpc":"2.0","id":1,"method":"x","p":")" + pad, nullptr, ""},  // a batch
      {R"({"id":null,"p":")" + pad, nullptr, ""},
      {R"({"id":{"a":1},"p":")" + pad, nullptr, ""},
      {R"({"id":true,"p":")" + pad, nullptr, ""},
      {"", nullptr, ""},
      {std::string(5000, '['), nullptr, ""},
  };
  for (const Row& row : rows) {
    INFO(row.head.substr(0, 80));
    Message m = DecodeTooLong(row.head, "", 16u << 20);
    REQUIRE(m.kind == Kind::kInvalid);
    CHECK(m.error.code == kInvalidRequest);
    CHECK_THAT(m.error.message, Catch::Contains("16 MiB"));
    CHECK(m.id == row.id);
    CHECK(m.id_text == row.id_text);
  }
  CHECK_THAT(DecodeTooLong("{", "", 4096).error.message, Catch::Contains("4096 bytes"));
}

TEST_CASE("the tail of an over-long line gives back an id written last", "[unit][protocol]") {
  // The official TypeScript SDK sends {...request, jsonrpc, id}: method, params, then the id.
  const std::string pad(1000, 'x');
  struct Row {
    std::string tail;
    Json id;
    std::string id_text;
  };
  const Row rows[] = {
      {pad + R"("}},"jsonrpc":"2.0","id":7})", 7, ""},
      {pad + R"("}} , "jsonrpc" : "2.0" , "id" : "abc" } )" "\r", "abc", ""},
      {pad + R"("},"id":18446744073709551616})", 1.8446744073709552e19, "18446744073709551616"},
      {pad + R"("},"id":-2.50})", -2.5, "-2.50"},
      // Members after the id are skipped: strings with escaped quotes, nested values, literals.
      {pad + R"(","id":3,"s":"a\"b\\","o":{"k":["}",{"q":"]"}]},"n":null,"t":true,"f":-1e5})", 3, ""},
      // A string id with escapes, and a key that only looks like "id" inside a value.
      {pad + R"(","id":"a\"}b","x":"\"id\":9"})", "a\"}b", ""},
      // Not found: id null.
      {pad + R"("},"jsonrpc":"2.0"})", nullptr, ""},           // no id before the cut
      {pad + R"(","params":{"id":5}})", nullptr, ""},            // nested
      {pad + R"("}},"id":null})", nullptr, ""},
      {pad + R"("}},"id":[1]})", nullptr, ""},
      {pad + R"("}},"id":7)", nullptr, ""},                      // not the end of an object
      {"7}", nullptr, ""},                                       // a value cut by the excerpt's start
      {"", nullptr, ""},
      {std::string(5000, '}'), nullptr, ""},
      {std::string(5000, '"'), nullptr, ""},
      {std::string(5000, '\\') + "\"}", nullptr, ""},
  };
  for (const Row& row : rows) {
    INFO(row.tail.substr(row.tail.size() > 80 ? row.tail.size() - 80 : 0));
    Message m = DecodeTooLong("", row.tail, 16u << 20);
    REQUIRE(m.kind == Kind::kInvalid);
    CHECK(m.error.code == kInvalidRequest);
    CHECK(m.id == row.id);
    CHECK(m.id_text == row.id_text);
  }
  SECTION("the tail wins over the head, as the last of two ids does in a parse") {
    CHECK(DecodeTooLong(R"({"id":1,"p":")", pad + R"(","id":2})", 100).id == 2);
    CHECK(DecodeTooLong(R"({"id":1,"p":")", pad + R"("})", 100).id == 1);
  }
}

}  // namespace
}  // namespace kpm::protocol
