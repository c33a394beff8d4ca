// End to end: the built keypool-mcp binary spoken to as an MCP 2026-07-28 client would
// (no initialize; the per-request _meta envelope on every request), against the
// mock-upstream program, and as a 2025 client on the same binary (docs/protocol.md,
// "Two protocol eras").

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/e2e_fixture.h"

namespace kpm::testing {
namespace {

/// The envelope the v2 TypeScript SDK (2.4.0) puts on every modern request.
Json Meta(std::string_view version = "2026-07-28") {
  return {{"io.modelcontextprotocol/protocolVersion", version},
          {"io.modelcontextprotocol/clientInfo", {{"name", "e2e-modern"}, {"version", "1.0"}}},
          {"io.modelcontextprotocol/clientCapabilities", Json::object()}};
}

Json WithMeta(Json params, Json meta = Meta()) {
  params["_meta"] = std::move(meta);
  return params;
}

/// A reply's result, which must be a modern one (resultType complete, serverInfo).
Json ModernResultOf(E2eServer& server, const std::optional<Json>& reply) {
  REQUIRE(reply.has_value());
  INFO(reply->dump());
  REQUIRE(reply->contains("result"));
  const Json& result = (*reply)["result"];
  server.Remember(result.dump());
  CHECK(result["resultType"] == "complete");
  CHECK(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "keypool-mcp");
  CHECK(result["_meta"]["io.modelcontextprotocol/serverInfo"]["version"].is_string());
  return result;
}

std::vector<std::string> ToolNames(const Json& list_result) {
  std::vector<std::string> names;
  for (const auto& t : list_result["tools"]) names.push_back(t["name"]);
  return names;
}

TEST_CASE("a modern client discovers, lists and calls tools without initialize", "[e2e][modern]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  rig.mock.Script(kCanary1, {"429:retry-after=2"});
  E2eServer& server = rig.Start({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1, kCanary2})}, "",
                                ServerLaunch{}, /*initialize=*/false);
  McpSession& s = server.session();

  Json discover = ModernResultOf(server, s.Request("server/discover", WithMeta(Json::object())));
  CHECK(discover["supportedVersions"] == Json::array({"2026-07-28"}));
  CHECK(discover["capabilities"]["tools"].is_object());
  CHECK(discover["instructions"].get<std::string>().find("complete") != std::string::npos);
  CHECK(discover["ttlMs"].is_number_integer());
  CHECK(discover["cacheScope"] == "private");

  Json list = ModernResultOf(server, s.Request("tools/list", WithMeta(Json::object())));
  CHECK(list["ttlMs"] == 300000);
  CHECK(list["cacheScope"] == "private");
  const std::vector<std::string> names = ToolNames(list);
  CHECK(names == std::vector<std::string>{"complete", "key_status", "check_keys", "list_models"});

  Json status = ModernResultOf(
      server, s.Request("tools/call", WithMeta({{"name", "key_status"}, {"arguments", Json::object()}})));
  CHECK_FALSE(status.contains("isError"));
  auto keys = KeysByLabel(status["structuredContent"]);
  CHECK(keys["openai#1"]["state"] == "ready");

  // complete fails over from the rate-limited key, with progress and log messages only
  // as the envelope asks.
  Json meta = Meta();
  meta["progressToken"] = "p-1";
  meta["io.modelcontextprotocol/logLevel"] = "debug";
  Json done = ModernResultOf(
      server, s.Request("tools/call", WithMeta({{"name", "complete"}, {"arguments", {{"prompt", "hi"}}}}, meta)));
  INFO(done.dump());
  CHECK_FALSE(done.contains("isError"));
  CHECK(ResultText(done) == "Hello from the mock upstream.");
  CHECK(Outcomes(done) == std::vector<std::string>{"rate_limited", "ok"});
  bool progress_seen = false;
  for (const auto& n : s.notifications()) {
    if (n["method"] == "notifications/progress") progress_seen = progress_seen || n["params"]["progressToken"] == "p-1";
  }
  CHECK(progress_seen);

  // The same tools in the same order for a 2025 client on this process, in the 2025 shape.
  auto legacy = s.Request("tools/list");
  REQUIRE(legacy.has_value());
  REQUIRE(legacy->contains("result"));
  CHECK(ToolNames((*legacy)["result"]) == names);
  CHECK_FALSE((*legacy)["result"].contains("resultType"));
  CHECK_FALSE((*legacy)["result"].contains("ttlMs"));

  server.CloseAndExpectCleanExit();
}

TEST_CASE("a modern request for another revision or a removed method is refused, and the server carries on",
          "[e2e][modern]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  E2eServer& server = rig.Start({MockProvider(rig.mock, "openai", "openai", "gpt-mock", {kCanary1})}, "",
                                ServerLaunch{}, /*initialize=*/false);
  McpSession& s = server.session();

  auto r = s.Request("server/discover", WithMeta(Json::object(), Meta("2099-01-01")));
  REQUIRE(r.has_value());
  INFO(r->dump());
  REQUIRE(r->contains("error"));
  CHECK((*r)["error"]["code"] == -32022);
  CHECK((*r)["error"]["data"]["supported"] == Json::array({"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"}));
  CHECK((*r)["error"]["data"]["requested"] == "2099-01-01");

  r = s.Request("ping", WithMeta(Json::object()));
  REQUIRE(r.has_value());
  CHECK((*r)["error"]["code"] == -32601);

  Json missing = Meta();
  missing.erase("io.modelcontextprotocol/clientCapabilities");
  r = s.Request("tools/list", WithMeta(Json::object(), missing));
  REQUIRE(r.has_value());
  CHECK((*r)["error"]["code"] == -32602);

  // A 2025 client on the same process: initialize and ping as always.
  auto init = s.Initialize("2025-11-25");
  REQUIRE(init.has_value());
  REQUIRE(init->contains("result"));
  CHECK((*init)["result"]["protocolVersion"] == "2025-11-25");
  CHECK_FALSE((*init)["result"].contains("resultType"));
  r = s.Request("ping");
  REQUIRE(r.has_value());
  CHECK((*r)["result"] == Json::object());

  server.CloseAndExpectCleanExit();
}

}  // namespace
}  // namespace kpm::testing
