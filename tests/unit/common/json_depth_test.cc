#include "common/json_depth.h"

#include <string>

#include <catch2/catch.hpp>

namespace kpm {
namespace {

TEST_CASE("The JSON depth guard finds the first bracket past the limit", "[unit][common]") {
  CHECK(FindJsonTooDeep("", 2) == std::nullopt);
  CHECK(FindJsonTooDeep(R"({"a":[1,2]})", 2) == std::nullopt);
  CHECK(FindJsonTooDeep(R"({"a":[[1]]})", 2) == size_t{6});
  CHECK(FindJsonTooDeep("[][][][]", 1) == std::nullopt);  // siblings do not add up
  CHECK(FindJsonTooDeep("]]]][[", 2) == std::nullopt);    // stray closers do not go below zero
  CHECK(FindJsonTooDeep(std::string(65, '['), 64) == size_t{64});
  CHECK(FindJsonTooDeep(std::string(64, '['), 64) == std::nullopt);
}

TEST_CASE("The JSON depth guard ignores brackets inside strings, escaped quotes included", "[unit][common]") {
  CHECK(FindJsonTooDeep(R"(["[[[[", "{{{{"])", 1) == std::nullopt);
  CHECK(FindJsonTooDeep(R"(["\"[[[["])", 1) == std::nullopt);
  CHECK(FindJsonTooDeep(R"(["\\", [[1]]])", 2) == size_t{8});  // "\\" ends the string
}

}  // namespace
}  // namespace kpm
