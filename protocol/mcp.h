#pragma once
/// MCP message shapes (lifecycle, tools, logging, progress) as plain structs, with the
/// wire spellings (protocolVersion, inputSchema, isError...) kept inside mcp.cc.
/// Parsers return Result: their error text is what an -32602 reply carries.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kpm::protocol {

using Json = nlohmann::json;

/// Protocol revisions we speak, newest first.
inline constexpr std::string_view kProtocolVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};

/// Echoes `requested` when it is one of kProtocolVersions, else answers the newest.
std::string NegotiateProtocolVersion(std::string_view requested);

struct InitializeParams {
  std::string protocol_version;  ///< as the client sent it
  Json client_info;              ///< {name, version} or null
};
/// params must be an object with a string protocolVersion.
Result<InitializeParams> ParseInitializeParams(const Json& params);

struct InitializeResult {
  std::string protocol_version;
  std::string server_name;
  std::string server_version;
  std::string instructions;  ///< omitted when empty
};
/// The server's capabilities, the same in every revision: tools (listChanged false) and
/// logging.
Json ServerCapabilities();
/// {protocolVersion, capabilities (ServerCapabilities()), serverInfo, instructions?}.
Json ToJson(const InitializeResult& r);

struct ToolDescriptor {
  std::string name;
  std::string title;        ///< omitted when empty
  std::string description;
  Json input_schema;
  Json output_schema;       ///< omitted when null
  Json annotations;         ///< ToolAnnotations (readOnlyHint, openWorldHint…); omitted when null
};
Json ToJson(const ToolDescriptor& t);

/// tools/list: `cursor` absent (first page) or an opaque string from a previous page.
struct ListToolsParams {
  std::optional<std::string> cursor;
};
Result<ListToolsParams> ParseListToolsParams(const Json& params);

struct ListToolsResult {
  std::vector<ToolDescriptor> tools;
  std::optional<std::string> next_cursor;
};
Json ToJson(const ListToolsResult& r);

/// Opaque page cursors: the offset of the first tool of the next page.
std::string EncodeCursor(std::size_t offset);
std::optional<std::size_t> DecodeCursor(std::string_view cursor);

struct CallToolParams {
  std::string name;
  Json arguments = Json::object();  ///< {} when the client sent none
  Json progress_token;              ///< params._meta.progressToken (string/number) or null
};
/// params must be an object with a string name; arguments, when present, an object.
Result<CallToolParams> ParseCallToolParams(const Json& params);

struct CallToolResult {
  std::string text;
  Json structured;  ///< structuredContent; omitted when null
  bool is_error = false;
};
/// {content:[{type:"text",text}], structuredContent?, isError? (only when true)}.
Json ToJson(const CallToolResult& r);

/// MCP (syslog) log levels, least severe first.
enum class LogLevel { kDebug, kInfo, kNotice, kWarning, kError, kCritical, kAlert, kEmergency };
std::optional<LogLevel> ParseLogLevel(std::string_view name);
std::string_view LogLevelName(LogLevel level);
/// logging/setLevel params: {level}.
Result<LogLevel> ParseSetLevelParams(const Json& params);

/// notifications/message params.
Json LogMessageParams(LogLevel level, std::string_view logger, const Json& data);
/// notifications/progress params; `total` and `message` omitted when absent/empty.
Json ProgressParams(const Json& token, double progress, std::optional<double> total,
                    std::string_view message);
/// notifications/cancelled: the requestId (string or number), if well formed.
std::optional<Json> ParseCancelledRequestId(const Json& params);

}  // namespace kpm::protocol
