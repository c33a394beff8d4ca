#include "mcp/tool_registry.h"

#include <catch2/catch.hpp>

namespace kpm::mcp {
namespace {

Tool MakeTool(std::string name) {
  Tool t;
  t.name = std::move(name);
  t.description = "a test tool";
  t.input_schema = {{"type", "object"}};
  t.handler = [](const Json&, ToolContext&) { return ToolResult{"ok", nullptr, false}; };
  return t;
}

TEST_CASE("tools are found by name and listed in registration order", "[unit][mcp]") {
  ToolRegistry registry;
  REQUIRE(registry.Add(MakeTool("zeta")).has_value());
  REQUIRE(registry.Add(MakeTool("alpha")).has_value());
  REQUIRE(registry.Add(MakeTool("key_status")).has_value());
  REQUIRE(registry.size() == 3);
  CHECK(registry.tools()[0].name == "zeta");
  CHECK(registry.tools()[1].name == "alpha");
  CHECK(registry.tools()[2].name == "key_status");
  REQUIRE(registry.Find("alpha") != nullptr);
  CHECK(registry.Find("alpha")->name == "alpha");
  CHECK(registry.Find("missing") == nullptr);
}

TEST_CASE("registration fails fast on mistakes", "[unit][mcp]") {
  ToolRegistry registry;
  REQUIRE(registry.Add(MakeTool("complete")).has_value());

  SECTION("a duplicate name") {
    auto r = registry.Add(MakeTool("complete"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("complete") != std::string::npos);
  }
  SECTION("an input schema whose root is not an object") {
    Tool t = MakeTool("bad");
    t.input_schema = {{"type", "string"}};
    CHECK_FALSE(registry.Add(t).has_value());
    t.input_schema = nullptr;
    CHECK_FALSE(registry.Add(t).has_value());
  }
  SECTION("an output schema whose root is not an object") {
    Tool t = MakeTool("bad");
    t.output_schema = {{"type", "array"}};
    CHECK_FALSE(registry.Add(t).has_value());
  }
  SECTION("a malformed name") {
    CHECK_FALSE(registry.Add(MakeTool("")).has_value());
    CHECK_FALSE(registry.Add(MakeTool("has space")).has_value());
    CHECK_FALSE(registry.Add(MakeTool(std::string(129, 'a'))).has_value());
  }
  SECTION("no handler") {
    Tool t = MakeTool("nohandler");
    t.handler = nullptr;
    CHECK_FALSE(registry.Add(t).has_value());
  }
  CHECK(registry.size() == 1);
}

}  // namespace
}  // namespace kpm::mcp
