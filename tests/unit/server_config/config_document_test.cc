#include "server/config_document.h"

#include <catch2/catch.hpp>

#include <string>

namespace kpm::server {
namespace {

using Kind = ConfigDocument::Kind;

std::string ErrorOf(std::string_view text, std::string_view path) {
  auto r = ParseConfigDocument(text, path);
  if (r) return "(parsed fine)";
  CHECK(r.error().kind == ErrorKind::kConfig);
  return r.error().message;
}

TEST_CASE("ConfigDocument maps keep their entries in file order", "[unit][config]") {
  auto r = ParseConfigDocument("b: 1\na: [x, 'y']\n", "c.yaml");
  if (!r) FAIL(r.error().message);
  REQUIRE(r->kind == Kind::kMap);
  REQUIRE(r->entries.size() == 2);
  REQUIRE(r->key_marks.size() == 2);
  CHECK(r->entries[0].key == "b");
  CHECK(r->entries[0].value.kind == Kind::kInt);
  CHECK(r->entries[1].key == "a");
  CHECK(r->key_marks[1].line == 2);
  const ConfigDocument& list = r->entries[1].value;
  REQUIRE(list.kind == Kind::kList);
  REQUIRE(list.items.size() == 2);
  CHECK(list.items[1].kind == Kind::kString);
  CHECK(list.items[1].mark.column == 8);

  // A copy is deep: entries hold documents, not references.
  ConfigDocument copy = *r;
  copy.entries[1].value.items.clear();
  CHECK(r->entries[1].value.items.size() == 2);
}

TEST_CASE("ConfigDocument: JSON yaml-cpp cannot read keeps its entries", "[unit][config]") {
  // yaml-cpp rejects UTF-16 surrogate pairs, which JSON allows: the nlohmann tree is used.
  auto r = ParseConfigDocument(R"({"a": {"b": ["\ud83d\ude00", 2]}})", "c.json");
  if (!r) FAIL(r.error().message);
  REQUIRE(r->entries.size() == 1);
  CHECK(r->entries[0].key == "a");
  CHECK(r->key_marks[0].line == 0);  // no positions on this path
  const ConfigDocument& b = r->entries[0].value.entries.at(0).value;
  REQUIRE(b.items.size() == 2);
  CHECK(b.items[0].text == "\xF0\x9F\x98\x80");
  CHECK(b.items[1].kind == Kind::kInt);
}

TEST_CASE("ConfigDocument: one YAML document, however it is marked", "[unit][config]") {
  CHECK(ParseConfigDocument("---\na: 1\n", "c.yaml").has_value());
  CHECK(ParseConfigDocument("a: 1\n...\n", "c.yaml").has_value());
  CHECK(ParseConfigDocument("--- {a: 1}\n...\n", "c.yaml").has_value());
  CHECK(ParseConfigDocument("a: |\n  ---\n  ...\nb: '---'\n", "c.yaml").has_value());
  CHECK(ErrorOf("a: 1\n---\nb: 2\n", "c.yaml") == "c.yaml:2:1: more than one YAML document; keep one");
  CHECK(ErrorOf("a: 1\n...\n---\n", "c.yaml") == "c.yaml:3:1: more than one YAML document; keep one");
  CHECK(ErrorOf("a\n---\nb\n---\nc\n", "c.yaml") == "c.yaml:2:1: more than one YAML document; keep one");
  CHECK(ErrorOf("", "c.yaml") == "c.yaml: the file is empty");
  CHECK(ErrorOf("# only a comment\n", "c.yaml") == "c.yaml: the file is empty");
}

TEST_CASE("ConfigDocument: a token yaml-cpp never consumes is an error, not a hang", "[unit][config]") {
  const std::string comma = ": YAML syntax error: unexpected ',' (a comma separates items only inside [...] or {...})";
  CHECK(ErrorOf(",", "c.yaml") == "c.yaml:1:1" + comma);
  CHECK(ErrorOf(",,,", "c.yaml") == "c.yaml:1:1" + comma);
  CHECK(ErrorOf("- a\n,", "c.yaml") == "c.yaml:2:1" + comma);
  CHECK(ErrorOf("&x ,", "c.yaml") == "c.yaml:1:4" + comma);
  CHECK(ErrorOf("\"\",", "c.yaml") == "c.yaml:1:3" + comma);
  // After a "---" the ',' starts no document of its own: a second document is reported.
  CHECK(ErrorOf("a: 1\n---\n,", "c.yaml") == "c.yaml:2:1: more than one YAML document; keep one");
  CHECK_THAT(ErrorOf("a: 1\n---\nb: 2\n,", "c.yaml"), Catch::StartsWith("c.yaml:4:1: YAML syntax error"));
  // Inside a flow collection a ',' is fine.
  CHECK(ParseConfigDocument("[a, b]\n", "c.yaml").has_value());
  CHECK(ParseConfigDocument("{a: 1, b: 2}\n", "c.yaml").has_value());
}

TEST_CASE("ConfigDocument: nesting is bounded for JSON and YAML", "[unit][config]") {
  std::string deep_json = std::string(100000, '[') + std::string(100000, ']');
  CHECK(ErrorOf(deep_json, "c.json") == "c.json:1:65: nested more than 64 levels deep");
  CHECK(ParseConfigDocument(std::string(64, '[') + std::string(64, ']'), "c.json").has_value());
  // Unbalanced and deep is still refused by depth, before nlohmann sees it.
  CHECK(ErrorOf(std::string(100000, '{'), "c.json") == "c.json:1:65: nested more than 64 levels deep");
  // YAML flow nesting: yaml-cpp's own limit or ours, an error either way.
  CHECK_THAT(ErrorOf(std::string(100, '[') + std::string(100, ']'), "c.yaml"), Catch::Contains("nested too deeply"));
  CHECK_THAT(ErrorOf("a: &x [*x]\n", "c.yaml"), Catch::Contains("nested too deeply"));
}

}  // namespace
}  // namespace kpm::server
