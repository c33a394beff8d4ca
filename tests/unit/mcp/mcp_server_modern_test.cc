// McpServer serving MCP 2026-07-28 (requests with the per-request _meta envelope) next
// to the 2025 revisions, plus on_client, Log() and SetInstructions. Driven in process
// through the real framing code: a PipeClient over a StdioTransport.

#include "mcp/mcp_server.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/pipe_client.h"

namespace kpm::mcp {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using kpm::testing::PipeClient;

constexpr const char* kModern = "2026-07-28";

Tool MakeTool(std::string name, ToolHandler handler, Json output_schema = nullptr) {
  Tool t;
  t.name = std::move(name);
  t.description = "test tool " + t.name;
  t.input_schema = {{"type", "object"}, {"properties", {{"n", {{"type", "integer"}}}}}};
  t.output_schema = std::move(output_schema);
  t.handler = std::move(handler);
  return t;
}

/// A client, a registry, a transport and a server running on its own thread.
class Harness {
 public:
  explicit Harness(McpServerOptions options = {}) : options_(std::move(options)) {}
  ~Harness() {
    if (!server_) return;
    client_.CloseInput();
    if (run_.wait_for(10s) != std::future_status::ready) {
      server_->Stop();
      run_.wait();
    }
  }
  void Add(Tool tool) { REQUIRE(registry_.Add(std::move(tool)).has_value()); }
  void Start() {
    transport_ = std::make_unique<StdioTransport>(
        StdioTransportOptions{client_.server_in_fd(), client_.server_out_fd(), 16u << 20, nullptr});
    server_ = std::make_unique<McpServer>(options_, registry_, *transport_);
    run_ = std::async(std::launch::async, [this] { return server_->Run(); });
  }
  Json Call(const Json& id, std::string_view method, const Json& params = nullptr) {
    REQUIRE(client_.Request(id, method, params));
    auto reply = client_.WaitForReply(id);
    REQUIRE(reply.has_value());
    return *reply;
  }
  PipeClient& client() { return client_; }
  McpServer& server() { return *server_; }

 private:
  PipeClient client_;
  ToolRegistry registry_;
  McpServerOptions options_;
  std::unique_ptr<StdioTransport> transport_;
  std::unique_ptr<McpServer> server_;
  std::future<int> run_;
};

/// The envelope the v2 TypeScript SDK sends on every modern request.
Json Envelope(std::string_view version = kModern, Json extra = Json::object()) {
  Json meta = {{"io.modelcontextprotocol/protocolVersion", version},
               {"io.modelcontextprotocol/clientInfo", {{"name", "sdk-v2"}, {"version", "2.4.0"}}},
               {"io.modelcontextprotocol/clientCapabilities", Json::object()}};
  meta.update(extra);
  return meta;
}

Json ModernParams(Json params = Json::object(), Json meta = Envelope()) {
  params["_meta"] = std::move(meta);
  return params;
}

int ErrorCode(const Json& reply) {
  INFO(reply.dump());
  REQUIRE(reply.contains("error"));
  return reply["error"]["code"].get<int>();
}

void CheckModernShape(const Json& result) {
  INFO(result.dump());
  CHECK(result["resultType"] == "complete");
  CHECK(result["_meta"]["io.modelcontextprotocol/serverInfo"] == Json{{"name", "kpm-test"}, {"version", "1.2.3"}});
}

McpServerOptions TestOptions() {
  McpServerOptions o;
  o.name = "kpm-test";
  o.version = "1.2.3";
  o.instructions = "use the tools";
  return o;
}

TEST_CASE("server/discover answers a modern client without initialize", "[unit][mcp][modern]") {
  Harness h(TestOptions());
  h.Start();
  Json r = h.Call("server-discover-probe-1", "server/discover", ModernParams());
  INFO(r.dump());
  REQUIRE(r.contains("result"));
  const Json& res = r["result"];
  CheckModernShape(res);
  CHECK(res["supportedVersions"] == Json::array({"2026-07-28"}));
  CHECK(res["capabilities"] == Json{{"tools", {{"listChanged", false}}}, {"logging", Json::object()}});
  CHECK(res["instructions"] == "use the tools");
  CHECK(res["ttlMs"] == 0);
  CHECK(res["cacheScope"] == "private");
  CHECK(r["id"] == "server-discover-probe-1");

  SECTION("without the envelope it stays an unknown method, as for a 2025 client") {
    CHECK(ErrorCode(h.Call(2, "server/discover")) == -32601);
    CHECK(ErrorCode(h.Call(3, "server/discover", {{"_meta", {{"progressToken", 1}}}})) == -32601);
  }
}

TEST_CASE("modern tools/list carries resultType, ttlMs and cacheScope in registration order", "[unit][mcp][modern]") {
  McpServerOptions options = TestOptions();
  options.tools_page_size = 2;
  Harness h(options);
  for (const char* name : {"zeta", "alpha", "mid"}) {
    h.Add(MakeTool(name, [](const Json&, ToolContext&) { return ToolResult{"ok", nullptr, false}; }));
  }
  h.Start();

  Json page1 = h.Call(1, "tools/list", ModernParams());
  REQUIRE(page1.contains("result"));
  CheckModernShape(page1["result"]);
  CHECK(page1["result"]["ttlMs"] == 300000);
  CHECK(page1["result"]["cacheScope"] == "private");
  REQUIRE(page1["result"]["nextCursor"].is_string());
  Json page2 = h.Call(2, "tools/list", ModernParams({{"cursor", page1["result"]["nextCursor"]}}));
  REQUIRE(page2.contains("result"));
  CheckModernShape(page2["result"]);
  CHECK(page2["result"]["ttlMs"] == 300000);  // every page is cacheable on its own
  CHECK(page2["result"]["cacheScope"] == "private");
  std::vector<std::string> names;
  for (const Json* page : {&page1, &page2}) {
    for (const auto& t : (*page)["result"]["tools"]) names.push_back(t["name"]);
  }
  CHECK(names == std::vector<std::string>{"zeta", "alpha", "mid"});

  // The same order again, and the same tools a legacy client sees, whose result has no
  // modern member at all.
  Json again = h.Call(3, "tools/list", ModernParams());
  CHECK(again["result"]["tools"] == page1["result"]["tools"]);
  Json legacy = h.Call(4, "tools/list");
  CHECK(legacy["result"]["tools"] == page1["result"]["tools"]);
  for (const char* key : {"resultType", "ttlMs", "cacheScope", "_meta"}) CHECK_FALSE(legacy["result"].contains(key));
}

TEST_CASE("the tools/list cache hint comes from the options", "[unit][mcp][modern]") {
  McpServerOptions options = TestOptions();
  options.tools_list_cache = {42, true};
  options.discover_cache = {7, true};
  Harness h(options);
  h.Start();
  Json list = h.Call(1, "tools/list", ModernParams());
  CHECK(list["result"]["ttlMs"] == 42);
  CHECK(list["result"]["cacheScope"] == "public");
  Json discover = h.Call(2, "server/discover", ModernParams());
  CHECK(discover["result"]["ttlMs"] == 7);
  CHECK(discover["result"]["cacheScope"] == "public");
}

TEST_CASE("modern tools/call results carry resultType; legacy ones are unchanged", "[unit][mcp][modern]") {
  Harness h(TestOptions());
  h.Add(MakeTool(
      "echo",
      [](const Json& args, ToolContext&) {
        return ToolResult{args.dump(), args, false};
      },
      Json{{"type", "object"}}));
  h.Start();
  Json modern = h.Call(1, "tools/call", ModernParams({{"name", "echo"}, {"arguments", {{"n", 5}}}}));
  REQUIRE(modern.contains("result"));
  CheckModernShape(modern["result"]);
  CHECK(modern["result"]["structuredContent"] == Json{{"n", 5}});
  CHECK(modern["result"]["content"][0]["text"] == R"({"n":5})");

  // Invalid arguments are still a result (isError), in the modern shape.
  Json bad = h.Call(2, "tools/call", ModernParams({{"name", "echo"}, {"arguments", {{"n", "five"}}}}));
  REQUIRE(bad.contains("result"));
  CheckModernShape(bad["result"]);
  CHECK(bad["result"]["isError"] == true);

  // An unknown tool stays a -32602 error.
  CHECK(ErrorCode(h.Call(3, "tools/call", ModernParams({{"name", "nope"}}))) == -32602);

  Json legacy = h.Call(4, "tools/call", {{"name", "echo"}, {"arguments", {{"n", 5}}}});
  REQUIRE(legacy.contains("result"));
  CHECK(legacy["result"] ==
        Json{{"content", {{{"type", "text"}, {"text", R"({"n":5})"}}}}, {"structuredContent", {{"n", 5}}}});
}

TEST_CASE("a version the server does not serve is -32022 listing the supported versions", "[unit][mcp][modern]") {
  Harness h(TestOptions());
  h.Start();
  const Json supported = Json::array({"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"});
  int id = 1;
  for (const char* version : {"1900-01-01", "2027-01-01", "2025-11-25", ""}) {
    INFO(version);
    for (const char* method : {"server/discover", "tools/list", "tools/call", "ping"}) {
      INFO(method);
      Json r = h.Call(id++, method, ModernParams({{"name", "x"}}, Envelope(version)));
      REQUIRE(ErrorCode(r) == -32022);
      CHECK(r["error"]["data"]["supported"] == supported);
      CHECK(r["error"]["data"]["requested"] == version);
      const std::string message = r["error"]["message"];
      CHECK(message.find("2026-07-28, 2025-11-25, 2025-06-18, 2025-03-26") != std::string::npos);
    }
  }
}

TEST_CASE("a malformed envelope is -32602 naming the key", "[unit][mcp][modern]") {
  Harness h(TestOptions());
  h.Start();
  struct Row {
    Json meta;
    const char* key;
  };
  Json no_caps = Envelope();
  no_caps.erase("io.modelcontextprotocol/clientCapabilities");
  const Row rows[] = {
      {Envelope(kModern, {{"io.modelcontextprotocol/protocolVersion", 20260728}}), "protocolVersion"},
      {no_caps, "clientCapabilities"},
      {Envelope(kModern, {{"io.modelcontextprotocol/clientCapabilities", "all"}}), "clientCapabilities"},
      {Envelope(kModern, {{"io.modelcontextprotocol/clientInfo", {{"name", "x"}}}}), "clientInfo"},
      {Envelope(kModern, {{"io.modelcontextprotocol/clientInfo", "x"}}), "clientInfo"},
      {Envelope(kModern, {{"io.modelcontextprotocol/logLevel", "loud"}}), "logLevel"},
  };
  int id = 1;
  for (const auto& row : rows) {
    INFO(row.meta.dump());
    Json r = h.Call(id++, "tools/list", ModernParams(Json::object(), row.meta));
    REQUIRE(ErrorCode(r) == -32602);
    CHECK(r["error"]["message"].get<std::string>().find(row.key) != std::string::npos);
  }
  // clientInfo is optional (a SHOULD): without it the request is served.
  Json no_info = Envelope();
  no_info.erase("io.modelcontextprotocol/clientInfo");
  CHECK(h.Call(id++, "tools/list", ModernParams(Json::object(), no_info)).contains("result"));
}

TEST_CASE("methods the 2026-07-28 revision removed are -32601 with the envelope", "[unit][mcp][modern]") {
  Harness h(TestOptions());
  h.Start();
  int id = 1;
  for (const char* method : {"ping", "initialize", "logging/setLevel", "resources/list"}) {
    INFO(method);
    Json r = h.Call(id++, method, ModernParams({{"protocolVersion", "2025-11-25"}, {"level", "debug"}}));
    CHECK(ErrorCode(r) == -32601);
  }
  // The same methods without the envelope are served as before.
  CHECK(h.Call(id++, "ping")["result"] == Json::object());
}

TEST_CASE("a modern call gets notifications/message only at or above its own logLevel", "[unit][mcp][modern]") {
  Harness h(TestOptions());
  h.Add(MakeTool("logs", [](const Json&, ToolContext& ctx) {
    ctx.log("debug", "d");
    ctx.log("info", "i");
    ctx.log("warning", "w");
    ctx.progress(1, 2, "half");
    return ToolResult{"done", nullptr, false};
  }));
  h.Start();
  auto logs_of = [&](const std::vector<Json>& messages) {
    std::vector<std::string> data;
    for (const auto& m : messages) data.push_back(m["params"]["data"]);
    return data;
  };
  auto& c = h.client();

  SECTION("no logLevel: none at all (even though the legacy default would send info)") {
    REQUIRE(h.Call(1, "tools/call", ModernParams({{"name", "logs"}}))["result"]["resultType"] == "complete");
    CHECK(c.Notifications("notifications/message").empty());
  }
  SECTION("logLevel warning: only the warning") {
    Json meta = Envelope(kModern, {{"io.modelcontextprotocol/logLevel", "warning"}});
    REQUIRE(h.Call(1, "tools/call", ModernParams({{"name", "logs"}}, meta)).contains("result"));
    CHECK(logs_of(c.Notifications("notifications/message")) == std::vector<std::string>{"w"});
  }
  SECTION("logLevel debug: all three; progress still follows progressToken") {
    Json meta = Envelope(kModern, {{"io.modelcontextprotocol/logLevel", "debug"}, {"progressToken", "p1"}});
    REQUIRE(h.Call(1, "tools/call", ModernParams({{"name", "logs"}}, meta)).contains("result"));
    CHECK(logs_of(c.Notifications("notifications/message")) == std::vector<std::string>{"d", "i", "w"});
    auto progress = c.Notifications("notifications/progress");
    REQUIRE(progress.size() == 1);
    CHECK(progress[0]["params"]["progressToken"] == "p1");
  }
  SECTION("a legacy call still follows logging/setLevel (info by default)") {
    REQUIRE(h.Call(1, "tools/call", {{"name", "logs"}}).contains("result"));
    CHECK(logs_of(c.Notifications("notifications/message")) == std::vector<std::string>{"i", "w"});
  }
}

TEST_CASE("a modern call can be cancelled like a legacy one", "[unit][mcp][modern]") {
  Harness h(TestOptions());
  std::atomic<bool> saw_cancel{false};
  h.Add(MakeTool("waits", [&](const Json&, ToolContext& ctx) {
    ctx.cancel.WaitFor(std::chrono::milliseconds(10000));
    saw_cancel = ctx.cancel.cancelled();
    return ToolResult{"late", nullptr, false};
  }));
  h.Start();
  auto& c = h.client();
  REQUIRE(c.Request(7, "tools/call", ModernParams({{"name", "waits"}})));
  REQUIRE(c.Notify("notifications/cancelled", {{"requestId", 7}, {"_meta", Envelope()}}));
  // The server answers later requests, and never the cancelled one.
  REQUIRE(h.Call(8, "tools/list", ModernParams()).contains("result"));
  for (int i = 0; i < 500 && !saw_cancel; ++i) std::this_thread::sleep_for(2ms);
  CHECK(saw_cancel);
  CHECK(h.Call(9, "tools/list", ModernParams()).contains("result"));
  CHECK(c.ReplyCount(7) == 0);
}

TEST_CASE("on_client hears initialize's clientInfo and each new modern clientInfo once", "[unit][mcp][modern]") {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> heard;
  McpServerOptions options = TestOptions();
  options.on_client = [&](const std::string& name, const std::string& version) {
    std::lock_guard<std::mutex> lock(mu);
    heard.emplace_back(name, version);
  };
  Harness h(options);
  h.Start();
  auto heard_now = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return heard;
  };
  using Heard = std::vector<std::pair<std::string, std::string>>;

  h.Call(1, "server/discover", ModernParams());
  h.Call(2, "tools/list", ModernParams());
  CHECK(heard_now() == Heard{{"sdk-v2", "2.4.0"}});
  h.Call(3, "tools/list",
         ModernParams(Json::object(), Envelope(kModern, {{"io.modelcontextprotocol/clientInfo",
                                                          {{"name", "claude-code"}, {"version", "3"}}}})));
  CHECK(heard_now() == Heard{{"sdk-v2", "2.4.0"}, {"claude-code", "3"}});
  // A request rejected for its version does not count; one without clientInfo neither.
  Json no_info = Envelope();
  no_info.erase("io.modelcontextprotocol/clientInfo");
  h.Call(4, "tools/list", ModernParams(Json::object(), no_info));
  h.Call(5, "tools/list",
         ModernParams(Json::object(), Envelope("2099-01-01", {{"io.modelcontextprotocol/clientInfo",
                                                               {{"name", "other"}, {"version", "1"}}}})));
  CHECK(heard_now().size() == 2);
  // initialize always tells (a legacy client may start a new session).
  h.Call(6, "initialize",
         {{"protocolVersion", "2025-11-25"},
          {"capabilities", Json::object()},
          {"clientInfo", {{"name", "inspector"}, {"version", "0.9"}}}});
  h.Call(7, "initialize",
         {{"protocolVersion", "2025-11-25"},
          {"capabilities", Json::object()},
          {"clientInfo", {{"name", "inspector"}, {"version", "0.9"}}}});
  CHECK(heard_now() == Heard{{"sdk-v2", "2.4.0"}, {"claude-code", "3"}, {"inspector", "0.9"}, {"inspector", "0.9"}});
  // An initialize without clientInfo tells nobody.
  h.Call(8, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()}});
  CHECK(heard_now().size() == 4);
}

TEST_CASE("Log sends a notifications/message once a legacy session started, filtered by setLevel",
          "[unit][mcp][modern]") {
  Harness h(TestOptions());
  h.Start();
  auto& c = h.client();
  auto messages = [&] { return c.Notifications("notifications/message"); };

  // Before initialize, and for a modern client: nothing (request-scoped in 2026-07-28).
  h.server().Log("warning", "before");
  h.Call(1, "tools/list", ModernParams());
  h.server().Log("warning", {{"config", "modern only"}});
  CHECK(h.Call(2, "ping")["result"] == Json::object());  // replies are in order: nothing came before
  CHECK(messages().empty());

  h.Call(3, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()}});
  h.server().Log("warn", {{"config", "reloaded with 1 warning"}});
  h.server().Log("debug", "dropped: below info");
  h.Call(4, "ping");
  auto got = messages();
  REQUIRE(got.size() == 1);
  CHECK(got[0]["params"] ==
        Json{{"level", "warning"}, {"logger", "kpm-test"}, {"data", {{"config", "reloaded with 1 warning"}}}});

  h.Call(5, "logging/setLevel", {{"level", "error"}});
  h.server().Log("warning", "dropped: below error");
  h.server().Log("error", "kept");
  h.Call(6, "ping");
  got = messages();
  REQUIRE(got.size() == 2);
  CHECK(got[1]["params"]["data"] == "kept");
}

TEST_CASE("SetInstructions changes later initialize and server/discover answers", "[unit][mcp][modern]") {
  Harness h(TestOptions());
  h.Start();
  const Json init = {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()}};
  CHECK(h.Call(1, "initialize", init)["result"]["instructions"] == "use the tools");

  // Changed from another thread while requests are being answered.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) h.server().SetInstructions(std::string("v").append(std::to_string(i % 3)));
  });
  for (int i = 0; i < 20; ++i) {
    const std::string got = h.Call(100 + i, "server/discover", ModernParams())["result"]["instructions"];
    CHECK((got == "v0" || got == "v1" || got == "v2" || got == "use the tools"));
  }
  stop = true;
  writer.join();

  h.server().SetInstructions("reloaded: 2 providers");
  CHECK(h.Call(2, "initialize", init)["result"]["instructions"] == "reloaded: 2 providers");
  CHECK(h.Call(3, "server/discover", ModernParams())["result"]["instructions"] == "reloaded: 2 providers");
  h.server().SetInstructions("");
  CHECK_FALSE(h.Call(4, "initialize", init)["result"].contains("instructions"));
  CHECK_FALSE(h.Call(5, "server/discover", ModernParams())["result"].contains("instructions"));
}

TEST_CASE("legacy and modern requests interleave on one connection", "[unit][mcp][modern]") {
  Harness h(TestOptions());
  h.Add(MakeTool("echo", [](const Json& args, ToolContext&) { return ToolResult{args.dump(), nullptr, false}; }));
  h.Start();
  Json init = h.Call(1, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()}});
  CHECK(init["result"]["protocolVersion"] == "2025-11-25");
  CHECK_FALSE(init["result"].contains("resultType"));
  CheckModernShape(h.Call(2, "tools/call", ModernParams({{"name", "echo"}}))["result"]);
  Json legacy = h.Call(3, "tools/call", {{"name", "echo"}});
  CHECK_FALSE(legacy["result"].contains("resultType"));
  // initialize asking for the modern revision gets the newest 2025 one: modern clients
  // do not use initialize at all.
  CHECK(h.Call(4, "initialize",
               {{"protocolVersion", kModern}, {"capabilities", Json::object()}})["result"]["protocolVersion"] ==
        "2025-11-25");
}

}  // namespace
}  // namespace kpm::mcp
