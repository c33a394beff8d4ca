#pragma once
/// What a tool is to the MCP server: a name, schemas and a handler. Tools live in
/// server/tool_*.cc; the registry (tool_registry.h) validates and dispatches them.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/cancel.h"

namespace kpm::mcp {

using Json = nlohmann::json;

/// Handed to a handler for one call. Both callbacks are always callable (no-ops when
/// the client asked for nothing) and thread-safe.
struct ToolContext {
  const CancelToken& cancel;
  /// notifications/progress, only sent when the request carried _meta.progressToken.
  std::function<void(double progress, std::optional<double> total, const std::string& message)> progress;
  /// notifications/message at `level` (debug, info, warning, error...), filtered by logging/setLevel.
  std::function<void(std::string_view level, const Json& data)> log;
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
  ToolHandler handler;
};

}  // namespace kpm::mcp
