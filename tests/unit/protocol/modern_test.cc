// protocol/modern.h: the MCP 2026-07-28 envelope, result shapes and -32022.

#include "protocol/modern.h"

#include <string>

#include <catch2/catch.hpp>

namespace kpm::protocol {
namespace {

Json Meta(Json extra = Json::object()) {
  Json meta = {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
               {"io.modelcontextprotocol/clientCapabilities", Json::object()}};
  meta.update(extra);
  return meta;
}

TEST_CASE("a request without the protocolVersion claim is legacy", "[unit][protocol][modern]") {
  for (const Json& params :
       {Json(nullptr), Json::array({1}), Json::object(), Json{{"_meta", "x"}}, Json{{"_meta", {{"progressToken", 1}}}},
        Json{{"_meta", {{"io.modelcontextprotocol/clientCapabilities", Json::object()}}}},
        Json{{"_meta", {{"io.modelcontextprotocol/related-task", {{"taskId", "t"}}}}}}}) {
    INFO(params.dump());
    CHECK(ClassifyRequest(params).kind == RequestEra::Kind::kLegacy);
  }
}

TEST_CASE("a valid envelope is modern with its client and log level", "[unit][protocol][modern]") {
  RequestEra era = ClassifyRequest({{"_meta", Meta()}});
  REQUIRE(era.kind == RequestEra::Kind::kModern);
  CHECK(era.envelope.protocol_version == "2026-07-28");
  CHECK_FALSE(era.envelope.client_name.has_value());
  CHECK_FALSE(era.envelope.log_level.has_value());

  era = ClassifyRequest({{"_meta", Meta({{"io.modelcontextprotocol/clientInfo", {{"name", "c"}, {"version", "9"}}},
                                         {"io.modelcontextprotocol/logLevel", "notice"},
                                         {"progressToken", "t"},
                                         {"com.example/other", 1}})}});
  REQUIRE(era.kind == RequestEra::Kind::kModern);
  CHECK(era.envelope.client_name == "c");
  CHECK(era.envelope.client_version == "9");
  CHECK(era.envelope.log_level == LogLevel::kNotice);
}

TEST_CASE("an envelope is checked version first, then its keys", "[unit][protocol][modern]") {
  // The version decides before anything else, even with clientCapabilities missing.
  RequestEra era = ClassifyRequest({{"_meta", {{"io.modelcontextprotocol/protocolVersion", "2024-11-05"}}}});
  REQUIRE(era.kind == RequestEra::Kind::kRejected);
  CHECK(era.error.code == kUnsupportedProtocolVersion);
  CHECK(era.error.data ==
        Json{{"supported", {"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"}}, {"requested", "2024-11-05"}});
  CHECK(era.error.message ==
        "unsupported protocol version \"2024-11-05\"; this server supports 2026-07-28, 2025-11-25, 2025-06-18, "
        "2025-03-26");

  era = ClassifyRequest({{"_meta", {{"io.modelcontextprotocol/protocolVersion", nullptr}}}});
  REQUIRE(era.kind == RequestEra::Kind::kRejected);
  CHECK(era.error.code == kInvalidParams);

  era = ClassifyRequest({{"_meta", {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"}}}});
  REQUIRE(era.kind == RequestEra::Kind::kRejected);
  CHECK(era.error.code == kInvalidParams);
  CHECK(era.error.message == "invalid params: _meta[\"io.modelcontextprotocol/clientCapabilities\"] is required");

  era = ClassifyRequest({{"_meta", Meta({{"io.modelcontextprotocol/logLevel", 3}})}});
  REQUIRE(era.kind == RequestEra::Kind::kRejected);
  CHECK(era.error.code == kInvalidParams);
  era = ClassifyRequest({{"_meta", Meta({{"io.modelcontextprotocol/clientInfo", {{"name", "c"}, {"version", 2}}}})}});
  REQUIRE(era.kind == RequestEra::Kind::kRejected);
  CHECK(era.error.code == kInvalidParams);
}

TEST_CASE("an unsupported version error quotes a long requested version short but echoes it whole", "[unit][protocol][modern]") {
  const std::string huge(1000, '9');
  RpcError e = RpcError::UnsupportedProtocolVersion(huge, {"2026-07-28"});
  CHECK(e.code == -32022);
  CHECK(e.data["requested"] == huge);
  CHECK(e.message ==
        "unsupported protocol version \"" + std::string(64, '9') + "...\"; this server supports 2026-07-28");
  CHECK(EncodeError(1, e).find("\"code\":-32022") != std::string::npos);
}

TEST_CASE("ModernResult adds resultType and serverInfo and keeps other _meta", "[unit][protocol][modern]") {
  Json r = ModernResult({{"tools", Json::array()}, {"_meta", {{"com.example/x", 1}}}}, "srv", "1.0");
  CHECK(r ==
        Json{{"tools", Json::array()},
             {"resultType", "complete"},
             {"_meta",
              {{"com.example/x", 1}, {"io.modelcontextprotocol/serverInfo", {{"name", "srv"}, {"version", "1.0"}}}}}});
  CHECK(ModernResult(Json::object(), "s", "v")["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "s");
  CHECK(ModernResult(nullptr, "s", "v").is_null());
}

TEST_CASE("cache hints are never negative and name their scope", "[unit][protocol][modern]") {
  CHECK(WithCacheHint(Json::object(), {-5, false}) == Json{{"ttlMs", 0}, {"cacheScope", "private"}});
  CHECK(WithCacheHint(Json::object(), {1000, true}) == Json{{"ttlMs", 1000}, {"cacheScope", "public"}});
}

TEST_CASE("a discover result has versions, capabilities and cache fields", "[unit][protocol][modern]") {
  DiscoverResult d;
  d.supported_versions = {"2026-07-28"};
  d.cache = {0, false};
  Json j = ToJson(d);
  CHECK(j == Json{{"supportedVersions", {"2026-07-28"}},
                  {"capabilities", ServerCapabilities()},
                  {"ttlMs", 0},
                  {"cacheScope", "private"}});
  d.instructions = "hello";
  CHECK(ToJson(d)["instructions"] == "hello");
  CHECK(IsModernMethod("server/discover"));
  CHECK(IsModernMethod("tools/call"));
  CHECK_FALSE(IsModernMethod("ping"));
  CHECK_FALSE(IsModernMethod("initialize"));
}

}  // namespace
}  // namespace kpm::protocol
