// In-process tests of McpServer through the real framing code: a PipeClient writes
// lines into a StdioTransport over pipes and collects the replies by id.

#include "mcp/mcp_server.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "common/fiber.h"
#include "tests/support/pipe_client.h"

namespace kpm::mcp {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using kpm::testing::PipeClient;

/// A one-shot gate a tool handler can wait on, with a timeout so a broken test cannot
/// hang. Handlers run on fibers of one loop thread: Wait parks (fiber::SleepFor) instead
/// of blocking that thread.
class Gate {
 public:
  void Open() { open_ = true; }
  bool Wait(std::chrono::milliseconds timeout = 10s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!open_ && std::chrono::steady_clock::now() < until) kpm::fiber::SleepFor(2, nullptr);
    return open_;
  }

 private:
  std::atomic<bool> open_{false};
};

Tool MakeTool(std::string name, ToolHandler handler, Json schema = {{"type", "object"}}) {
  Tool t;
  t.name = std::move(name);
  t.description = "test tool " + t.name;
  t.input_schema = std::move(schema);
  t.handler = std::move(handler);
  return t;
}

/// Owns a client, a registry, a transport and a server running on its own thread.
class Harness {
 public:
  explicit Harness(McpServerOptions options = {}, std::size_t max_line = 16u << 20)
      : options_(std::move(options)), max_line_(max_line) {}

  ~Harness() {
    if (!server_) return;
    client_.CloseInput();
    if (!run_.valid()) return;
    if (run_.wait_for(10s) != std::future_status::ready) {
      server_->Stop();  // a failing test must not hang the suite
      run_.wait();
    }
  }

  void Add(Tool tool) { REQUIRE(registry_.Add(std::move(tool)).has_value()); }

  void Start() {
    transport_ = std::make_unique<StdioTransport>(
        StdioTransportOptions{client_.server_in_fd(), client_.server_out_fd(), max_line_, nullptr});
    server_ = std::make_unique<McpServer>(options_, registry_, *transport_);
    run_ = std::async(std::launch::async, [this] { return server_->Run(); });
  }

  /// Closes the input and waits (bounded) for Run() to return; its exit code or -1.
  int Finish() {
    client_.CloseInput();
    if (!run_.valid()) return exit_code_;
    if (run_.wait_for(10s) != std::future_status::ready) return -1;
    exit_code_ = run_.get();
    return exit_code_;
  }

  PipeClient& client() { return client_; }
  McpServer& server() { return *server_; }
  std::future<int>& run() { return run_; }

  /// Sends a request and waits for its reply.
  Json Call(const Json& id, std::string_view method, const Json& params = nullptr) {
    REQUIRE(client_.Request(id, method, params));
    auto reply = client_.WaitForReply(id);
    REQUIRE(reply.has_value());
    return *reply;
  }

 private:
  PipeClient client_;  // declared first: outlives the server that writes into it
  ToolRegistry registry_;
  McpServerOptions options_;
  std::size_t max_line_;
  std::unique_ptr<StdioTransport> transport_;
  std::unique_ptr<McpServer> server_;
  std::future<int> run_;
  int exit_code_ = -1;
};

Json Initialize(std::string_view version) {
  return {{"protocolVersion", version},
          {"capabilities", Json::object()},
          {"clientInfo", {{"name", "test"}, {"version", "1"}}}};
}

int ErrorCode(const Json& reply) { return reply.at("error").at("code").get<int>(); }

TEST_CASE("initialize negotiates the protocol version and describes the server",
          "[unit][mcp]") {
  McpServerOptions options;
  options.version = "9.8.7";
  Harness h(options);
  h.Start();
  struct Row {
    const char* asked;
    const char* answered;
  };
  const Row rows[] = {{"2025-11-25", "2025-11-25"},
                      {"2025-06-18", "2025-06-18"},
                      {"2025-03-26", "2025-03-26"},
                      {"2024-11-05", "2025-11-25"},
                      {"1999-01-01", "2025-11-25"}};
  int id = 1;
  for (const auto& row : rows) {
    INFO(row.asked);
    Json reply = h.Call(id++, "initialize", Initialize(row.asked));
    REQUIRE(reply.contains("result"));
    CHECK(reply["result"]["protocolVersion"] == row.answered);
    CHECK(reply["result"]["serverInfo"]["name"] == "keypool-mcp");
    CHECK(reply["result"]["serverInfo"]["version"] == "9.8.7");
    CHECK(reply["result"]["capabilities"]["tools"]["listChanged"] == false);
    CHECK(reply["result"]["capabilities"]["logging"].is_object());
  }
  CHECK(ErrorCode(h.Call(id++, "initialize", {{"capabilities", Json::object()}})) == -32602);
  h.client().Notify("notifications/initialized");
  CHECK(h.Call("p", "ping")["result"] == Json::object());
  CHECK(h.Finish() == 0);
}

TEST_CASE("every row of the error table gets its reply", "[unit][mcp]") {
  Harness h;
  h.Add(MakeTool("echo", [](const Json& args, ToolContext&) {
    return ToolResult{args.dump(), args, false};
  }));
  h.Add(MakeTool("throws", [](const Json&, ToolContext&) -> ToolResult {
    throw std::runtime_error("secret detail sk-canary-0000");
  }));
  h.Add(MakeTool(
      "chat", [](const Json&, ToolContext&) { return ToolResult{"hi", nullptr, false}; },
      Json::parse(R"({"type":"object","properties":{"messages":{"type":"array","items":{
          "type":"object","properties":{"role":{"enum":["system","user","assistant"]}}}}}})")));
  h.Start();
  auto& c = h.client();

  SECTION("server/discover before initialize is an unknown method, not a hang") {
    Json r = h.Call(1, "server/discover");
    CHECK(ErrorCode(r) == -32601);
    // And the session carries on: initialize still works afterwards.
    CHECK(h.Call(2, "initialize", Initialize("2025-06-18"))["result"]["protocolVersion"] ==
          "2025-06-18");
    CHECK(ErrorCode(h.Call(3, "no/such/method")) == -32601);
  }
  SECTION("a line that is not JSON is a parse error with id null") {
    c.SendLine("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ");
    auto r = c.WaitFor([](const Json& m) { return m.contains("error"); });
    REQUIRE(r.has_value());
    CHECK(ErrorCode(*r) == -32700);
    CHECK((*r)["id"].is_null());
  }
  SECTION("a batch array is one invalid-request error with id null") {
    c.SendLine(R"([{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}])");
    auto r = c.WaitFor([](const Json& m) { return m.contains("error"); });
    REQUIRE(r.has_value());
    CHECK(ErrorCode(*r) == -32600);
    CHECK((*r)["id"].is_null());
    CHECK(h.Call(3, "ping").contains("result"));
    CHECK(c.ReplyCount(1) == 0);
    CHECK(c.ReplyCount(2) == 0);
  }
  SECTION("id null and an id of the wrong type are invalid requests") {
    c.SendLine(R"({"jsonrpc":"2.0","id":null,"method":"ping"})");
    c.SendLine(R"({"jsonrpc":"2.0","id":{"x":1},"method":"ping"})");
    c.SendLine(R"({"jsonrpc":"2.0","id":9,"method":7})");
    auto r = c.WaitForReply(9);
    REQUIRE(r.has_value());
    CHECK(ErrorCode(*r) == -32600);
    const auto all = c.Messages();
    REQUIRE(all.size() == 3);
    CHECK(ErrorCode(all[0]) == -32600);
    CHECK(all[0]["id"].is_null());
    CHECK(ErrorCode(all[1]) == -32600);
  }
  SECTION("an unknown tool and malformed call params are invalid params") {
    CHECK(ErrorCode(h.Call(1, "tools/call", {{"name", "nope"}})) == -32602);
    CHECK(ErrorCode(h.Call(2, "tools/call", {{"arguments", Json::object()}})) == -32602);
    CHECK(ErrorCode(h.Call(3, "tools/call", {{"name", "echo"}, {"arguments", "x"}})) == -32602);
    CHECK(ErrorCode(h.Call(4, "tools/call")) == -32602);
  }
  SECTION("arguments that do not fit the schema are an isError result naming the field") {
    Json r = h.Call(1, "tools/call",
                    {{"name", "chat"}, {"arguments", {{"messages", {{{"role", "robot"}}}}}}});
    REQUIRE(r.contains("result"));
    CHECK(r["result"]["isError"] == true);
    const std::string text = r["result"]["content"][0]["text"];
    CHECK(text.find("messages[0].role: expected one of system, user, assistant") !=
          std::string::npos);
  }
  SECTION("a handler that throws is an internal error without its detail") {
    Json r = h.Call(1, "tools/call", {{"name", "throws"}});
    CHECK(ErrorCode(r) == -32603);
    CHECK(r["error"]["message"] == "internal error");
    for (const auto& line : c.Lines()) CHECK(line.find("canary") == std::string::npos);
    CHECK(h.Call(2, "ping").contains("result"));  // still serving
  }
  SECTION("notifications never get a reply, even unknown or broken ones") {
    c.Notify("notifications/initialized");
    c.Notify("notifications/unknown", {{"x", 1}});
    c.Notify("tools/call", {{"name", "throws"}});
    c.SendLine(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":7})");
    c.SendLine(R"({"method":"ping"})");
    c.SendLine(R"({"jsonrpc":"2.0","id":5,"result":{}})");  // a response from the client
    CHECK(h.Call("last", "ping").contains("result"));
    CHECK(h.Finish() == 0);
    CHECK(c.Messages().size() == 1);
  }
  SECTION("a successful call has the MCP result shape") {
    Json r = h.Call(1, "tools/call", {{"name", "echo"}, {"arguments", {{"a", 1}}}});
    REQUIRE(r.contains("result"));
    CHECK(r["result"]["content"][0]["type"] == "text");
    CHECK(r["result"]["content"][0]["text"] == R"({"a":1})");
    CHECK(r["result"]["structuredContent"]["a"] == 1);
    CHECK_FALSE(r["result"].contains("isError"));
  }
  SECTION("logging/setLevel rejects a level MCP does not define") {
    CHECK(ErrorCode(h.Call(1, "logging/setLevel", {{"level", "verbose"}})) == -32602);
    CHECK(ErrorCode(h.Call(2, "logging/setLevel")) == -32602);
    CHECK(h.Call(3, "logging/setLevel", {{"level", "error"}})["result"] == Json::object());
  }
  CHECK(h.Finish() == 0);
  // Every reply went out exactly once, and every line is one JSON-RPC message.
  for (const auto& m : c.Messages()) {
    REQUIRE(m.is_object());
    CHECK(m["jsonrpc"] == "2.0");
    if (m.contains("id") && !m["id"].is_null()) CHECK(c.ReplyCount(m["id"]) == 1);
  }
}

TEST_CASE("tools/list pages through the tools with an opaque cursor", "[unit][mcp]") {
  McpServerOptions options;
  options.tools_page_size = 2;
  Harness h(options);
  for (const char* name : {"t1", "t2", "t3", "t4", "t5"}) {
    Tool t = MakeTool(name, [](const Json&, ToolContext&) { return ToolResult{}; });
    t.title = std::string("Title ") + name;
    t.output_schema = {{"type", "object"}};
    h.Add(std::move(t));
  }
  h.Start();

  std::vector<std::string> names;
  Json params = Json::object();
  int id = 1;
  int pages = 0;
  for (;;) {
    Json r = h.Call(id++, "tools/list", params);
    REQUIRE(r.contains("result"));
    ++pages;
    for (const auto& t : r["result"]["tools"]) {
      names.push_back(t["name"]);
      CHECK(t["inputSchema"]["type"] == "object");
      CHECK(t["outputSchema"]["type"] == "object");
      CHECK(t["title"].get<std::string>().rfind("Title ", 0) == 0);
      CHECK(t.contains("description"));
    }
    if (!r["result"].contains("nextCursor")) break;
    REQUIRE(pages < 10);
    params = {{"cursor", r["result"]["nextCursor"]}};
  }
  CHECK(pages == 3);
  CHECK(names == std::vector<std::string>{"t1", "t2", "t3", "t4", "t5"});

  CHECK(ErrorCode(h.Call(id++, "tools/list", {{"cursor", "garbage"}})) == -32602);
  CHECK(ErrorCode(h.Call(id++, "tools/list", {{"cursor", 5}})) == -32602);
  CHECK(ErrorCode(h.Call(id++, "tools/list", {{"cursor", protocol::EncodeCursor(99)}})) == -32602);
  CHECK(h.Finish() == 0);
}

TEST_CASE("a tool that blocks does not delay ping or tools/list", "[unit][mcp]") {
  Harness h;
  Gate release;
  Gate started;
  h.Add(MakeTool("block", [&](const Json&, ToolContext&) {
    started.Open();
    release.Wait();
    return ToolResult{"released", nullptr, false};
  }));
  h.Start();
  auto& c = h.client();
  REQUIRE(c.Request("slow", "tools/call", {{"name", "block"}}));
  REQUIRE(started.Wait());
  CHECK(h.Call("ping-1", "ping").contains("result"));
  CHECK(h.Call("list-1", "tools/list").contains("result"));
  CHECK(c.ReplyCount("slow") == 0);  // still blocked while the others were answered
  release.Open();
  auto slow = c.WaitForReply("slow");
  REQUIRE(slow.has_value());
  CHECK((*slow)["result"]["content"][0]["text"] == "released");
  CHECK(h.Finish() == 0);
}

TEST_CASE("many blocked calls still leave room for another tool", "[unit][mcp]") {
  McpServerOptions options;
  options.max_concurrent_calls = 8;
  Harness h(options);
  Gate release;
  std::atomic<int> running{0};
  h.Add(MakeTool("block", [&](const Json&, ToolContext&) {
    ++running;
    release.Wait();
    return ToolResult{"done", nullptr, false};
  }));
  h.Add(MakeTool("quick", [](const Json&, ToolContext&) { return ToolResult{"quick", nullptr, false}; }));
  h.Start();
  for (int i = 0; i < 3; ++i) REQUIRE(h.client().Request(i, "tools/call", {{"name", "block"}}));
  Json r = h.Call("q", "tools/call", {{"name", "quick"}});
  CHECK(r["result"]["content"][0]["text"] == "quick");
  release.Open();
  for (int i = 0; i < 3; ++i) CHECK(h.client().WaitForReply(i).has_value());
  CHECK(h.Finish() == 0);
}

TEST_CASE("a cancelled call sees its token set and gets no reply", "[unit][mcp]") {
  Harness h;
  Gate started;
  std::promise<bool> observed;
  h.Add(MakeTool("wait", [&](const Json&, ToolContext& ctx) {
    started.Open();
    observed.set_value(ctx.cancel.WaitFor(10s));
    return ToolResult{"cancelled", nullptr, true};
  }));
  h.Start();
  auto& c = h.client();
  REQUIRE(c.Request(7, "tools/call", {{"name", "wait"}}));
  REQUIRE(started.Wait());
  c.Notify("notifications/cancelled", {{"requestId", 7}, {"reason", "user gave up"}});
  auto seen = observed.get_future();
  REQUIRE(seen.wait_for(10s) == std::future_status::ready);
  CHECK(seen.get());
  // A later request is answered; the cancelled one never is, even after EOF.
  CHECK(h.Call(8, "ping").contains("result"));
  CHECK(h.Finish() == 0);
  CHECK(c.ReplyCount(7) == 0);
}

TEST_CASE("cancelling an id that is not in flight changes nothing", "[unit][mcp]") {
  Harness h;
  h.Add(MakeTool("quick", [](const Json&, ToolContext&) { return ToolResult{"q", nullptr, false}; }));
  h.Start();
  h.client().Notify("notifications/cancelled", {{"requestId", 99}});
  CHECK(h.Call(1, "tools/call", {{"name", "quick"}}).contains("result"));
  h.client().Notify("notifications/cancelled", {{"requestId", 1}});  // already answered
  CHECK(h.Finish() == 0);
  CHECK(h.client().ReplyCount(1) == 1);
}

TEST_CASE("progress notifications carry the token and never go backwards", "[unit][mcp]") {
  McpServerOptions options;
  // An interval no test run reaches: only a change of message kind gets through, which
  // makes the throttle deterministic here.
  options.progress_interval = std::chrono::hours(1);
  Harness h(options);
  h.Add(MakeTool("stream", [](const Json&, ToolContext& ctx) {
    ctx.progress(5, std::nullopt, "openai#1: 5 chars");
    for (int i = 6; i < 50; ++i) ctx.progress(i, std::nullopt, "openai#1: " + std::to_string(i) + " chars");
    ctx.progress(3, std::nullopt, "openai#1 rate_limited, trying openai#2");  // restart: clamped
    ctx.progress(60, 100.0, "done");
    return ToolResult{"text", nullptr, false};
  }));
  h.Start();
  auto& c = h.client();

  Json r = h.Call(1, "tools/call", {{"name", "stream"}, {"_meta", {{"progressToken", "tok-1"}}}});
  REQUIRE(r.contains("result"));
  auto notes = c.Notifications("notifications/progress");
  REQUIRE(notes.size() == 3);
  CHECK(notes[0]["params"]["progressToken"] == "tok-1");
  CHECK(notes[0]["params"]["progress"] == 5);
  CHECK(notes[1]["params"]["progress"] == 5);  // 3 clamped to the highest sent
  CHECK(notes[1]["params"]["message"] == "openai#1 rate_limited, trying openai#2");
  CHECK(notes[2]["params"]["progress"] == 60);
  CHECK(notes[2]["params"]["total"] == 100);
  double last = 0;
  for (const auto& n : notes) {
    CHECK(n["params"]["progress"].get<double>() >= last);
    last = n["params"]["progress"].get<double>();
  }
  // The reply comes after every notification of its call.
  const auto all = c.Messages();
  CHECK(all.back()["id"] == 1);

  SECTION("without a progress token nothing is sent") {
    CHECK(h.Call(2, "tools/call", {{"name", "stream"}}).contains("result"));
    CHECK(c.Notifications("notifications/progress").size() == 3);
  }
  CHECK(h.Finish() == 0);
}

TEST_CASE("tool log messages are filtered by logging/setLevel", "[unit][mcp]") {
  Harness h;
  h.Add(MakeTool("chatty", [](const Json&, ToolContext& ctx) {
    ctx.log("debug", "debug line");
    ctx.log("info", "info line");
    ctx.log("error", {{"what", "error line"}});
    return ToolResult{"ok", nullptr, false};
  }));
  h.Start();
  auto& c = h.client();
  CHECK(h.Call(1, "logging/setLevel", {{"level", "warning"}}).contains("result"));
  CHECK(h.Call(2, "tools/call", {{"name", "chatty"}}).contains("result"));
  auto logs = c.Notifications("notifications/message");
  REQUIRE(logs.size() == 1);
  CHECK(logs[0]["params"]["level"] == "error");
  CHECK(logs[0]["params"]["data"]["what"] == "error line");
  CHECK(logs[0]["params"]["logger"] == "keypool-mcp");

  CHECK(h.Call(3, "logging/setLevel", {{"level", "debug"}}).contains("result"));
  CHECK(h.Call(4, "tools/call", {{"name", "chatty"}}).contains("result"));
  CHECK(c.Notifications("notifications/message").size() == 4);
  CHECK(h.Finish() == 0);
}

TEST_CASE("an over-long line is answered with its id and the next line is still served", "[unit][mcp]") {
  Harness h({}, /*max_line=*/4096);
  h.Start();
  auto& c = h.client();
  std::thread writer([&] {
    c.SendLine(R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":")" +
               std::string(200000, 'x') + "\"}}");
    c.SendLine(R"({"jsonrpc":"2.0","method":"ping","params":{"pad":")" + std::string(5000, 'x') + "\"}}");
    // The TypeScript SDK's order: the id after the params.
    c.SendLine(R"({"method":"ping","params":{"pad":")" + std::string(200000, 'x') +
               R"("},"jsonrpc":"2.0","id":"last"})");
    c.Request(2, "ping");
  });
  // The id is in the head of the line: the client gets its error instead of waiting.
  auto err = c.WaitForReply(1);
  REQUIRE(err.has_value());
  CHECK(ErrorCode(*err) == -32600);
  CHECK_THAT((*err)["error"]["message"].get<std::string>(), Catch::Contains("4096 bytes"));
  // Without an id in its head, a line still gets its error, with id null.
  auto anonymous = c.WaitFor([](const Json& m) { return m.contains("error") && m["id"].is_null(); });
  REQUIRE(anonymous.has_value());
  CHECK(ErrorCode(*anonymous) == -32600);
  auto last = c.WaitForReply("last");
  REQUIRE(last.has_value());
  CHECK(ErrorCode(*last) == -32600);
  auto pong = c.WaitForReply(2);
  writer.join();
  REQUIRE(pong.has_value());
  CHECK(pong->contains("result"));
  CHECK(c.ReplyCount(1) == 1);
  CHECK(h.Finish() == 0);
}

TEST_CASE("a line with a NUL byte gets a parse error and the next line is still served", "[unit][mcp]") {
  Harness h;
  h.Start();
  auto& c = h.client();
  REQUIRE(c.SendRaw(std::string(R"({"jsonrpc":"2.0","id":1,"method":"ping"})") + std::string(1, '\0') +
                    R"({"jsonrpc":"2.0","id":2,"method":"ping"})" + "\n"));
  REQUIRE(c.Request(3, "ping"));
  auto pong = c.WaitForReply(3);
  REQUIRE(pong.has_value());
  CHECK(pong->contains("result"));
  const auto all = c.Messages();
  REQUIRE(all.size() == 2);
  CHECK(ErrorCode(all[0]) == -32700);
  CHECK(all[0]["id"].is_null());
  // Neither half of the broken line was served as a request.
  CHECK(c.ReplyCount(1) == 0);
  CHECK(c.ReplyCount(2) == 0);
  CHECK(h.Finish() == 0);
}

TEST_CASE("ids beyond 64 bits come back exactly as sent, from every kind of reply", "[unit][mcp]") {
  Harness h;
  h.Add(MakeTool("echo", [](const Json& args, ToolContext&) { return ToolResult{args.dump(), args, false}; }));
  h.Start();
  auto& c = h.client();
  const std::string big = "18446744073709551616";  // 2^64
  const std::string bigger = "340282366920938463463374607431768211457";
  REQUIRE(c.SendLine(R"({"jsonrpc":"2.0","id":)" + big + R"(,"method":"ping"})"));
  REQUIRE(c.SendLine(R"({"jsonrpc":"2.0","id":)" + bigger + R"(,"method":"tools/call","params":{"name":"echo"}})"));
  REQUIRE(c.SendLine(R"({"jsonrpc":"2.0","id":1.250,"method":"no/such"})"));
  REQUIRE(c.SendLine(R"({"jsonrpc":"2.0","id":1e3,"method":"tools/call","params":{"name":"nope"}})"));
  REQUIRE(c.Request(5, "ping"));
  REQUIRE(c.WaitForReply(5).has_value());
  // The tool call runs on a worker: wait for its reply too.
  REQUIRE(c.WaitFor([](const Json& m) { return m.contains("result") && m["result"].contains("content"); })
              .has_value());
  std::string all;
  for (const std::string& line : c.Lines()) all += line + "\n";
  INFO(all);
  CHECK_THAT(all, Catch::Contains("{\"id\":" + big + ",\"jsonrpc\":\"2.0\",\"result\":{}}"));
  CHECK_THAT(all, Catch::Contains("{\"id\":" + bigger + ",\"jsonrpc\":\"2.0\",\"result\":{\"content\""));
  CHECK_THAT(all, Catch::Contains("\"id\":1.250,\"jsonrpc\":\"2.0\"}"));
  CHECK_THAT(all, Catch::Contains("\"id\":1e3,\"jsonrpc\":\"2.0\"}"));
  CHECK(h.Finish() == 0);
}

TEST_CASE("at EOF Run returns 0 only after the calls in flight are answered", "[unit][mcp]") {
  Harness h;
  Gate started;
  Gate release;
  h.Add(MakeTool("block", [&](const Json&, ToolContext&) {
    started.Open();
    release.Wait();
    return ToolResult{"late answer", nullptr, false};
  }));
  h.Start();
  auto& c = h.client();
  REQUIRE(c.Request("inflight", "tools/call", {{"name", "block"}}));
  REQUIRE(started.Wait());
  c.CloseInput();
  // Run cannot return while the call is blocked; releasing it lets Run finish.
  CHECK(h.run().wait_for(0s) != std::future_status::ready);
  release.Open();
  REQUIRE(h.run().wait_for(10s) == std::future_status::ready);
  CHECK(h.run().get() == 0);
  auto r = c.WaitForReply("inflight");
  REQUIRE(r.has_value());
  CHECK((*r)["result"]["content"][0]["text"] == "late answer");
}

TEST_CASE("Stop cancels calls in flight, answers them and ends Run", "[unit][mcp]") {
  Harness h;
  Gate started;
  h.Add(MakeTool("wait", [&](const Json&, ToolContext& ctx) {
    started.Open();
    const bool cancelled = ctx.cancel.WaitFor(10s);
    return ToolResult{cancelled ? "stopped" : "timeout", nullptr, true};
  }));
  h.Start();
  auto& c = h.client();
  REQUIRE(c.Request(1, "tools/call", {{"name", "wait"}}));
  REQUIRE(started.Wait());
  std::thread stopper([&] { h.server().Stop(); });  // as the signal watcher would
  stopper.join();
  REQUIRE(h.run().wait_for(10s) == std::future_status::ready);
  CHECK(h.run().get() == 0);
  auto r = c.WaitForReply(1);
  REQUIRE(r.has_value());
  CHECK((*r)["result"]["content"][0]["text"] == "stopped");
}

TEST_CASE("past maxConcurrentCalls a call waits its turn and past the queue it is refused", "[unit][mcp]") {
  McpServerOptions options;
  options.max_concurrent_calls = 1;
  options.max_queued_calls = 1;
  Harness h(options);
  Gate release;
  Gate started;
  std::atomic<int> runs{0};
  h.Add(MakeTool("block", [&](const Json&, ToolContext&) {
    ++runs;
    started.Open();
    release.Wait();
    return ToolResult{"done", nullptr, false};
  }));
  h.Add(MakeTool("quick", [&](const Json&, ToolContext&) {
    ++runs;
    return ToolResult{"quick", nullptr, false};
  }));
  h.Start();
  auto& c = h.client();
  REQUIRE(c.Request("first", "tools/call", {{"name", "block"}}));
  REQUIRE(started.Wait());
  REQUIRE(c.Request("queued", "tools/call", {{"name", "quick"}}));
  // The queue holds one: this one is answered at once, and says why.
  Json busy = h.Call("refused", "tools/call", {{"name", "quick"}});
  CHECK(busy["result"]["isError"] == true);
  CHECK_THAT(busy["result"]["content"][0]["text"].get<std::string>(), Catch::Contains("server busy"));
  CHECK(c.ReplyCount("queued") == 0);  // waiting behind "first", not running
  CHECK(runs == 1);
  release.Open();
  auto first = c.WaitForReply("first");
  auto queued = c.WaitForReply("queued");
  REQUIRE(first.has_value());
  REQUIRE(queued.has_value());
  CHECK((*queued)["result"]["content"][0]["text"] == "quick");
  CHECK(runs == 2);
  CHECK(h.Finish() == 0);
}

TEST_CASE("a queued call the client cancels never starts and gets no reply", "[unit][mcp]") {
  McpServerOptions options;
  options.max_concurrent_calls = 1;
  Harness h(options);
  Gate release;
  Gate started;
  std::atomic<int> quick_runs{0};
  h.Add(MakeTool("block", [&](const Json&, ToolContext&) {
    started.Open();
    release.Wait();
    return ToolResult{"done", nullptr, false};
  }));
  h.Add(MakeTool("quick", [&](const Json&, ToolContext&) {
    ++quick_runs;
    return ToolResult{"quick", nullptr, false};
  }));
  h.Start();
  auto& c = h.client();
  REQUIRE(c.Request("first", "tools/call", {{"name", "block"}}));
  REQUIRE(started.Wait());
  REQUIRE(c.Request("queued", "tools/call", {{"name", "quick"}}));
  c.Notify("notifications/cancelled", {{"requestId", "queued"}});
  CHECK(h.Call("p", "ping").contains("result"));  // the cancellation has been read
  release.Open();
  REQUIRE(c.WaitForReply("first").has_value());
  // After the slot is free, the next call runs; the cancelled one did not.
  CHECK(h.Call("after", "tools/call", {{"name", "quick"}})["result"]["content"][0]["text"] == "quick");
  CHECK(quick_runs == 1);
  CHECK(c.ReplyCount("queued") == 0);
  CHECK(h.Finish() == 0);
}

TEST_CASE("an inline tool is answered while every call slot is busy", "[unit][mcp]") {
  McpServerOptions options;
  options.max_concurrent_calls = 2;
  Harness h(options);
  Gate release;
  std::atomic<int> started{0};
  h.Add(MakeTool("block", [&](const Json&, ToolContext&) {
    ++started;
    release.Wait();
    return ToolResult{"done", nullptr, false};
  }));
  Tool status = MakeTool("status", [](const Json&, ToolContext&) { return ToolResult{"fine", nullptr, false}; });
  status.runs_inline = true;
  h.Add(std::move(status));
  h.Start();
  auto& c = h.client();
  for (int i = 0; i < 4; ++i) REQUIRE(c.Request(i, "tools/call", {{"name", "block"}}));
  for (int i = 0; i < 500 && started < 2; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(started == 2);
  Json r = h.Call("s", "tools/call", {{"name", "status"}});
  CHECK(r["result"]["content"][0]["text"] == "fine");
  for (int i = 0; i < 4; ++i) CHECK(c.ReplyCount(i) == 0);
  release.Open();
  for (int i = 0; i < 4; ++i) CHECK(c.WaitForReply(i).has_value());
  CHECK(h.Finish() == 0);
}

}  // namespace
}  // namespace kpm::mcp
