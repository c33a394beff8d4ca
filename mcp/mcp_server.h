#pragma once
/// McpServer: the MCP session over a line Transport (SPEC §5). Reads JSON-RPC lines,
/// answers lifecycle and list methods inline on the reading thread, and runs each
/// tools/call on a fiber of a loop (common/fiber.h), so a slow tool never delays ping,
/// tools/list or another tool, and a thousand calls in flight need no thread each. A
/// tool marked runs_inline (no upstream I/O) is answered on the reading thread at once.
/// Past max_concurrent_calls a call waits in a bounded queue; past that it is refused.
/// Every request gets exactly one reply, built in dispatch; notifications get none.
///
/// Two eras from one binary (docs/protocol.md, "Two protocol eras"): a request whose
/// params._meta carries the MCP 2026-07-28 envelope is served statelessly by that
/// revision (server/discover; results with resultType, tools/list with ttlMs and
/// cacheScope; -32022 for a version we do not serve); any other request is served as
/// before, by the 2025 revision initialize negotiated (or none: initialize is not required).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/fiber.h"
#include "protocol/jsonrpc.h"
#include "protocol/mcp.h"
#include "protocol/modern.h"
#include "mcp/outbox.h"
#include "mcp/stdio_transport.h"
#include "mcp/tool_registry.h"

namespace kpm::mcp {

struct McpServerOptions {
  std::string name = "keypool-mcp";  ///< serverInfo.name and the notifications/message logger
  std::string version = "0.0.0";     ///< serverInfo.version
  /// initialize's and server/discover's instructions; omitted when empty. SetInstructions
  /// changes them while the server runs.
  std::string instructions;
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
  /// Modern tools/list cache hint (caching.mdx). The tool list never changes while the
  /// process runs, but its descriptions come from the configuration: private, 5 minutes.
  protocol::CacheHint tools_list_cache{300000, false};
  /// server/discover cache hint: 0 ms, since SetInstructions may change the answer.
  protocol::CacheHint discover_cache{0, false};
  /// Called when a client identifies itself: every initialize with a clientInfo, and
  /// each modern clientInfo (name, version) the first time a request carries it (up to
  /// 64 different ones). Runs on the reading thread before the request is answered;
  /// must not throw or block. Empty: nobody is told.
  std::function<void(const std::string& client_name, const std::string& client_version)> on_client;
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

  /// Sends a notifications/message that belongs to no call (e.g. a configuration
  /// warning) at `level` ("debug" … "emergency"; "warn" is warning; unknown: info), from
  /// logger options.name, unless it is below the level of logging/setLevel (else
  /// options.initial_log_level). A no-op until a legacy client has sent initialize: in
  /// the 2026-07-28 revision notifications/message is request-scoped (logging.mdx: only
  /// on a request that set io.modelcontextprotocol/logLevel), so a modern-only client
  /// gets none; after Run() has returned it writes nothing. Thread-safe.
  void Log(std::string_view level, const nlohmann::json& data);

  /// Replaces the instructions later initialize and server/discover answers carry
  /// (empty: omitted). Thread-safe.
  void SetInstructions(std::string instructions);

 private:
  struct Call;
  /// A method's answer: a result, or an error for the wire.
  struct Answer {
    nlohmann::json result;
    std::optional<protocol::RpcError> error;
  };
  /// `modern`: the request's 2026-07-28 envelope, or nullptr for a legacy request.
  using Method = Answer (McpServer::*)(const nlohmann::json& params, const protocol::RequestEnvelope* modern);

  void HandleLine(const std::string& line);
  /// `bytes`: the size of the request's line (what a queued call holds).
  void HandleRequest(const protocol::Message& msg, std::size_t bytes);
  void HandleNotification(const protocol::Message& msg);
  Answer OnInitialize(const nlohmann::json& params, const protocol::RequestEnvelope* modern);
  Answer OnPing(const nlohmann::json& params, const protocol::RequestEnvelope* modern);
  Answer OnListTools(const nlohmann::json& params, const protocol::RequestEnvelope* modern);
  Answer OnSetLevel(const nlohmann::json& params, const protocol::RequestEnvelope* modern);
  Answer OnDiscover(const nlohmann::json& params, const protocol::RequestEnvelope* modern);
  /// Answers -32602 / schema errors at once, else registers the call and runs it:
  /// inline, on a fiber, or (past max_concurrent_calls) queued.
  void StartToolCall(const protocol::Message& msg, std::size_t bytes, const protocol::RequestEnvelope* modern);
  /// Tells options.on_client about a client's identity; `always`: even if seen before.
  void NoteClient(const std::string& name, const std::string& version, bool always);
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
  /// `id_text`: Message::id_text, echoed in place of `id` when not empty. `modern`: a
  /// result gets resultType and serverInfo (protocol::ModernResult).
  void SendReply(const nlohmann::json& id, const std::string& id_text, const Answer& answer, bool modern = false);
  void Write(std::string line);

  McpServerOptions options_;
  const ToolRegistry& tools_;
  Transport& transport_;
  std::unique_ptr<fiber::Loop> own_loop_;  // when options.loop is null
  fiber::Loop& loop_;

  std::atomic<bool> stopping_{false};
  std::atomic<int> log_level_;
  std::atomic<bool> legacy_session_{false};  // a legacy initialize was answered: Log() sends

  mutable std::mutex instructions_mu_;
  std::string instructions_;  // guarded by instructions_mu_

  std::mutex clients_mu_;
  std::set<std::pair<std::string, std::string>> clients_seen_;  // modern clientInfo; guarded
  Outbox outbox_;  // every line to the client goes through it: nobody waits for the client

  std::mutex calls_mu_;
  std::condition_variable idle_cv_;  // running_ reached 0 with nothing queued
  std::unordered_map<std::string, std::shared_ptr<Call>> calls_;  // by IdKey; guarded
  std::size_t running_ = 0;                                       // fiber calls; guarded
  std::deque<std::shared_ptr<Call>> queue_;                       // past the limit; guarded
  std::size_t queued_bytes_ = 0;                                  // guarded
};

}  // namespace kpm::mcp
