#pragma once
/// McpServer: the MCP session over a line Transport (SPEC §5). Reads JSON-RPC lines,
/// answers lifecycle and list methods inline on the reading thread, and runs each
/// tools/call on a fiber of a loop (common/fiber.h), so a slow tool never delays ping,
/// tools/list or another tool, and a thousand calls in flight need no thread each. A
/// tool marked runs_inline (no upstream I/O) is answered on the reading thread at once.
/// Past max_concurrent_calls a call waits in a bounded queue; past that it is refused.
/// Every request gets exactly one reply, built in dispatch; notifications get none.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/fiber.h"
#include "protocol/jsonrpc.h"
#include "protocol/mcp.h"
#include "mcp/outbox.h"
#include "mcp/stdio_transport.h"
#include "mcp/tool_registry.h"

namespace kpm::mcp {

struct McpServerOptions {
  std::string name = "keypool-mcp";  ///< serverInfo.name and the notifications/message logger
  std::string version = "0.0.0";     ///< serverInfo.version
  std::string instructions;          ///< initialize's instructions; omitted when empty
  /// Where tool calls run; nullptr: a loop of the server's own. Must outlive the server.
  fiber::Loop* loop = nullptr;
  /// Tool calls running at once (SPEC §2 maxConcurrentCalls); past it a call queues.
  std::size_t max_concurrent_calls = 256;
  /// The queue's bounds: calls, and the bytes of their request lines. A call past
  /// either is answered at once with an isError result saying the server is busy.
  std::size_t max_queued_calls = 1024;
  std::size_t max_queued_bytes = std::size_t{64} << 20;
  std::size_t tools_page_size = 50;  ///< tools per tools/list page
  /// Progress throttle: an update within this interval of the last one sent for the
  /// same call is dropped unless its message differs "in kind" (see ToolContext
  /// progress in mcp_server.cc): at most ~10 per second at the default.
  std::chrono::milliseconds progress_interval{100};
  /// notifications/message below this level are dropped until logging/setLevel.
  protocol::LogLevel initial_log_level = protocol::LogLevel::kInfo;
};

class McpServer {
 public:
  /// `tools` and `transport` must outlive the server. No thread starts before Run().
  McpServer(McpServerOptions options, const ToolRegistry& tools, Transport& transport);
  /// Stops and joins what Run started (Run must have returned or not be running).
  ~McpServer();
  McpServer(const McpServer&) = delete;
  McpServer& operator=(const McpServer&) = delete;

  /// Serves until the input ends (EOF) or Stop() is called, then waits for the tool
  /// calls in flight, writes their replies, and returns 0. Call once.
  int Run();

  /// Thread-safe, idempotent, returns at once: stops reading, cancels the CancelToken
  /// of every call in flight (their replies are still sent, unlike a client's
  /// notifications/cancelled) and makes Run() return once they are answered.
  void Stop();

 private:
  struct Call;
  /// A method's answer: a result, or an error for the wire.
  struct Answer {
    nlohmann::json result;
    std::optional<protocol::RpcError> error;
  };
  using Method = Answer (McpServer::*)(const nlohmann::json& params);

  void HandleLine(const std::string& line);
  /// `bytes`: the size of the request's line (what a queued call holds).
  void HandleRequest(const protocol::Message& msg, std::size_t bytes);
  void HandleNotification(const protocol::Message& msg);
  Answer OnInitialize(const nlohmann::json& params);
  Answer OnPing(const nlohmann::json& params);
  Answer OnListTools(const nlohmann::json& params);
  Answer OnSetLevel(const nlohmann::json& params);
  /// Answers -32602 / schema errors at once, else registers the call and runs it:
  /// inline, on a fiber, or (past max_concurrent_calls) queued.
  void StartToolCall(const protocol::Message& msg, std::size_t bytes);
  void RunToolCall(const std::shared_ptr<Call>& call);
  /// A fiber's call has ended: start the next queued one on this fiber's slot.
  void CallEnded();
  /// Blocks until no call runs or waits.
  void WaitForCalls();
  /// Sends the call's reply unless the client cancelled it; forgets the call.
  void FinishCall(const std::shared_ptr<Call>& call, const Answer& answer);
  void SendProgress(Call& call, double progress, std::optional<double> total,
                    const std::string& message);
  void SendLog(Call& call, std::string_view level, const nlohmann::json& data);
  /// `id_text`: Message::id_text, echoed in place of `id` when not empty.
  void SendReply(const nlohmann::json& id, const std::string& id_text, const Answer& answer);
  void Write(std::string line);

  McpServerOptions options_;
  const ToolRegistry& tools_;
  Transport& transport_;
  std::unique_ptr<fiber::Loop> own_loop_;  // when options.loop is null
  fiber::Loop& loop_;

  std::atomic<bool> stopping_{false};
  std::atomic<int> log_level_;
  Outbox outbox_;  // every line to the client goes through it: nobody waits for the client

  std::mutex calls_mu_;
  std::condition_variable idle_cv_;  // running_ reached 0 with nothing queued
  std::unordered_map<std::string, std::shared_ptr<Call>> calls_;  // by IdKey; guarded
  std::size_t running_ = 0;                                       // fiber calls; guarded
  std::deque<std::shared_ptr<Call>> queue_;                       // past the limit; guarded
  std::size_t queued_bytes_ = 0;                                  // guarded
};

}  // namespace kpm::mcp
