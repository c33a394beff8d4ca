#pragma once
/// McpServer: the MCP session over a line Transport (SPEC §5). Reads JSON-RPC lines,
/// answers lifecycle and list methods inline on the reading thread, and runs tools/call
/// on a small worker pool so a slow tool never delays ping, tools/list or another tool.
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
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

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
  /// Tool-call workers kept alive. When all are busy a new call starts another one,
  /// up to max_worker_threads; past that, calls queue.
  std::size_t worker_threads = 4;
  std::size_t max_worker_threads = 16;
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
  void HandleRequest(const protocol::Message& msg);
  void HandleNotification(const protocol::Message& msg);
  Answer OnInitialize(const nlohmann::json& params);
  Answer OnPing(const nlohmann::json& params);
  Answer OnListTools(const nlohmann::json& params);
  Answer OnSetLevel(const nlohmann::json& params);
  /// Answers -32602 / schema errors at once, else registers the call and queues it.
  void StartToolCall(const protocol::Message& msg);
  void RunToolCall(const std::shared_ptr<Call>& call);
  /// Sends the call's reply unless the client cancelled it; forgets the call.
  void FinishCall(const std::shared_ptr<Call>& call, const Answer& answer);
  void SendProgress(Call& call, double progress, std::optional<double> total,
                    const std::string& message);
  void SendLog(Call& call, std::string_view level, const nlohmann::json& data);
  /// `id_text`: Message::id_text, echoed in place of `id` when not empty.
  void SendReply(const nlohmann::json& id, const std::string& id_text, const Answer& answer);
  void Write(std::string line);

  void Enqueue(std::function<void()> job);
  void WorkerLoop();
  void StopWorkers();

  McpServerOptions options_;
  const ToolRegistry& tools_;
  Transport& transport_;

  std::atomic<bool> stopping_{false};
  std::atomic<int> log_level_;
  Outbox outbox_;  // every line to the client goes through it: nobody waits for the client

  std::mutex calls_mu_;
  std::unordered_map<std::string, std::shared_ptr<Call>> calls_;  // by IdKey

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> workers_;
  std::size_t idle_workers_ = 0;
  bool pool_closing_ = false;
};

}  // namespace kpm::mcp
