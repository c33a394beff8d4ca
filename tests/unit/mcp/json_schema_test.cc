#include "mcp/json_schema.h"

#include <string>

#include <catch2/catch.hpp>

namespace kpm::mcp {
namespace {

using Json = nlohmann::json;

const Json kCompleteSchema = Json::parse(R"({
  "type": "object",
  "properties": {
    "prompt": {"type": "string", "minLength": 1},
    "messages": {
      "type": "array", "minItems": 1,
      "items": {
        "type": "object",
        "properties": {
          "role": {"type": "string", "enum": ["system", "user", "assistant"]},
          "content": {"type": "string"}
        },
        "required": ["role", "content"],
        "additionalProperties": false
      }
    },
    "provider": {"type": "string"},
    "max_tokens": {"type": "integer", "minimum": 1},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "stop": {"type": ["string", "array", "null"]}
  },
  "oneOf": [{"required": ["prompt"]}, {"required": ["messages"]}],
  "additionalProperties": false
})");

TEST_CASE("instances that fit the schema pass", "[unit][mcp]") {
  const char* ok[] = {
      R"({"prompt":"hi"})",
      R"({"messages":[{"role":"user","content":"hi"}]})",
      R"({"prompt":"hi","max_tokens":5,"temperature":0.5})",
      R"({"prompt":"hi","max_tokens":5.0})",
      R"({"prompt":"hi","temperature":2})",
      R"({"prompt":"hi","stop":null})",
      R"({"prompt":"hi","stop":["a"]})",
  };
  for (const char* instance : ok) {
    INFO(instance);
    auto r = ValidateJson(kCompleteSchema, Json::parse(instance));
    CHECK(r.has_value());
  }
}

TEST_CASE("the first error names the field path and what is wrong", "[unit][mcp]") {
  struct Row {
    const char* instance;
    const char* error;
  };
  const Row rows[] = {
      {R"({"messages":[{"role":"robot","content":"x"}]})",
       "messages[0].role: expected one of system, user, assistant"},
      {R"({"messages":[{"role":"user","content":"x"},{"role":"user"}]})",
       "messages[1].content: required field is missing"},
      {R"({"messages":[{"role":"user","content":7}]})", "messages[0].content: expected string, got integer"},
      {R"({"messages":[]})", "messages: must have at least 1 item(s)"},
      {R"({"messages":"hi"})", "messages: expected array, got string"},
      {R"({"prompt":""})", "prompt: must be at least 1 character(s) long"},
      {R"({"prompt":"hi","max_tokens":0})", "max_tokens: must be >= 1"},
      {R"({"prompt":"hi","max_tokens":1.5})", "max_tokens: expected integer, got number"},
      {R"({"prompt":"hi","temperature":3})", "temperature: must be <= 2"},
      {R"({"prompt":"hi","temperature":"hot"})", "temperature: expected number, got string"},
      {R"({"prompt":"hi","stop":5})", "stop: expected string or array or null, got integer"},
      {R"({"prompt":"hi","modle":"x"})", "modle: unknown field (allowed: max_tokens, messages, "
                                        "prompt, provider, stop, temperature)"},
      {R"({"messages":[{"role":"user","content":"x","name":"n"}]})",
       "messages[0].name: unknown field (allowed: content, role)"},
      {R"({"prompt":"hi",": []ms":1})", R"([": []ms"]: unknown field (allowed: max_tokens, messages, )"
                                         "prompt, provider, stop, temperature)"},  // found by fuzz_json_schema
      {R"({"messages":[{"role":"user","content":"x","a b":1}]})",
       R"(messages[0]["a b"]: unknown field (allowed: content, role))"},
      {R"([1])", "(root): expected object, got array"},
      {R"(null)", "(root): expected object, got null"},
  };
  for (const auto& row : rows) {
    INFO(row.instance);
    auto r = ValidateJson(kCompleteSchema, Json::parse(row.instance));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == ErrorKind::kInvalidArgument);
    CHECK(r.error().message == row.error);
  }
}

TEST_CASE("oneOf fails on none and on more than one alternative", "[unit][mcp]") {
  auto none = ValidateJson(kCompleteSchema, Json::object());
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().message.rfind("(root): does not match any allowed form", 0) == 0);
  CHECK(none.error().message.find("prompt: required field is missing") != std::string::npos);
  CHECK(none.error().message.find("messages: required field is missing") != std::string::npos);

  auto both = ValidateJson(kCompleteSchema,
                           Json::parse(R"({"prompt":"a","messages":[{"role":"user","content":"b"}]})"));
  REQUIRE_FALSE(both.has_value());
  CHECK(both.error().message ==
        "(root): matches more than one allowed form; exactly one is expected");
}

TEST_CASE("anyOf, allOf, const, boolean and exclusive bounds behave", "[unit][mcp]") {
  struct Row {
    const char* schema;
    const char* instance;
    bool ok;
  };
  const Row rows[] = {
      {R"({"anyOf":[{"type":"string"},{"type":"integer"}]})", R"("x")", true},
      {R"({"anyOf":[{"type":"string"},{"type":"integer"}]})", R"(3)", true},
      {R"({"anyOf":[{"type":"string"},{"type":"integer"}]})", R"(true)", false},
      {R"({"anyOf":[{"required":["a"]},{"required":["b"]}]})", R"({"a":1,"b":2})", true},
      {R"({"allOf":[{"type":"number"},{"minimum":3}]})", R"(4)", true},
      {R"({"allOf":[{"type":"number"},{"minimum":3}]})", R"(2)", false},
      {R"({"const":"x"})", R"("x")", true},
      {R"({"const":"x"})", R"("y")", false},
      {R"({"type":"boolean"})", R"(false)", true},
      {R"({"type":"boolean"})", R"(0)", false},
      {R"({"type":"null"})", R"(null)", true},
      {R"({"exclusiveMinimum":0})", R"(0)", false},
      {R"({"exclusiveMaximum":1})", R"(0.5)", true},
      {R"({"maxLength":2})", R"("éé")", true},
      {R"({"maxLength":1})", R"("éé")", false},
      {R"({"maxItems":1})", R"([1,2])", false},
      {R"({"enum":[1,2]})", R"(2.0)", true},
      {R"({"additionalProperties":{"type":"integer"}})", R"({"a":1,"b":"x"})", false},
      {R"({"properties":{"a":false}})", R"({"a":1})", false},
      {R"({"type":"object","description":"unknown keywords are ignored","x-extra":1})", R"({})", true},
      {R"(true)", R"({"anything":1})", true},
  };
  for (const auto& row : rows) {
    INFO(row.schema << " vs " << row.instance);
    CHECK(ValidateJson(Json::parse(row.schema), Json::parse(row.instance)).has_value() == row.ok);
  }
}

}  // namespace
}  // namespace kpm::mcp
