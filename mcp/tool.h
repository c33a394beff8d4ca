#pragma once
/// What a tool is to the MCP server: a name, schemas and a handler. The registry
/// (tool_registry.h) validates them; the server (mcp_server.h) dispatches them.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/cancel.h"

namespace kpm::mcp {

using Json = nlohmann::json;

/// Handed to a handler for one call. Both callbacks are always callable (no-ops when
/// the client asked for nothing), thread-safe, and never wait for the client.
struct ToolContext {
  const CancelToken& cancel;
  /// notifications/progress, only sent when the request carried _meta.progressToken.
  std::function<void(double progress, std::optional<double> total, const std::string& message)> progress;
  /// notifications/message at `level` (debug, info, warning, error...), filtered by logging/setLevel.
  std::function<void(std::string_view level, const Json& data)> log;
  /// When the request arrived: a call that waited in the queue has used that much of
  /// its time (a deadline counts from here).
  std::chrono::steady_clock::time_point arrived = std::chrono::steady_clock::now();
};

/// A tool's answer. `is_error` results are still results (isError: true), not JSON-RPC errors.
struct ToolResult {
  std::string text;         ///< the text content block
  Json structured;          ///< structuredContent (an object) or null for none
  bool is_error = false;
};

using ToolHandler = std::function<ToolResult(const Json& arguments, ToolContext& ctx)>;

struct Tool {
  std::string name;
  std::string title;
  std::string description;
  Json input_schema;   ///< JSON Schema; root must be {"type":"object"}
  Json output_schema;  ///< JSON Schema; root must be {"type":"object"}
  Json annotations;    ///< MCP ToolAnnotations (hints for the client); null for none
  ToolHandler handler;
  /// The handler does no upstream I/O and returns in well under a millisecond
  /// (key_status): it is answered on the reading thread at once, never queued behind
  /// calls in flight.
  bool runs_inline = false;
};

}  // namespace kpm::mcp
