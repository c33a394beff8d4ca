#include "protocol/mcp.h"

#include <array>
#include <charconv>

namespace kpm::protocol {
namespace {

Error BadParams(std::string message) { return MakeError(ErrorKind::kInvalidArgument, std::move(message)); }

constexpr std::array<std::string_view, 8> kLevelNames = {
    "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"};

constexpr std::string_view kCursorPrefix = "kpm1.";

}  // namespace

std::string NegotiateProtocolVersion(std::string_view requested) {
  for (std::string_view v : kProtocolVersions) {
    if (v == requested) return std::string(v);
  }
  return std::string(kProtocolVersions[0]);
}

Result<InitializeParams> ParseInitializeParams(const Json& params) {
  if (!params.is_object()) return BadParams("initialize params must be an object");
  const auto v = params.find("protocolVersion");
  if (v == params.end() || !v->is_string()) return BadParams("protocolVersion must be a string");
  InitializeParams p;
  p.protocol_version = v->get<std::string>();
  if (auto c = params.find("clientInfo"); c != params.end()) p.client_info = *c;
  return p;
}

Json ServerCapabilities() {
  return {{"tools", {{"listChanged", false}}}, {"logging", Json::object()}};
}

Json ToJson(const InitializeResult& r) {
  Json j = {
      {"protocolVersion", r.protocol_version},
      {"capabilities", ServerCapabilities()},
      {"serverInfo", {{"name", r.server_name}, {"version", r.server_version}}},
  };
  if (!r.instructions.empty()) j["instructions"] = r.instructions;
  return j;
}

Json ToJson(const ToolDescriptor& t) {
  Json j = {{"name", t.name}};
  if (!t.title.empty()) j["title"] = t.title;
  j["description"] = t.description;
  j["inputSchema"] = t.input_schema;
  if (!t.output_schema.is_null()) j["outputSchema"] = t.output_schema;
  if (!t.annotations.is_null()) j["annotations"] = t.annotations;
  return j;
}

Result<ListToolsParams> ParseListToolsParams(const Json& params) {
  ListToolsParams p;
  if (params.is_null()) return p;
  if (!params.is_object()) return BadParams("tools/list params must be an object");
  const auto c = params.find("cursor");
  if (c == params.end() || c->is_null()) return p;
  if (!c->is_string()) return BadParams("cursor must be a string");
  p.cursor = c->get<std::string>();
  return p;
}

Json ToJson(const ListToolsResult& r) {
  Json tools = Json::array();
  for (const auto& t : r.tools) tools.push_back(ToJson(t));
  Json j = {{"tools", std::move(tools)}};
  if (r.next_cursor) j["nextCursor"] = *r.next_cursor;
  return j;
}

std::string EncodeCursor(std::size_t offset) {
  return std::string(kCursorPrefix) + std::to_string(offset);
}

std::optional<std::size_t> DecodeCursor(std::string_view cursor) {
  if (cursor.substr(0, kCursorPrefix.size()) != kCursorPrefix) return std::nullopt;
  std::string_view digits = cursor.substr(kCursorPrefix.size());
  if (digits.empty()) return std::nullopt;
  std::size_t offset = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), offset);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  return offset;
}

Result<CallToolParams> ParseCallToolParams(const Json& params) {
  if (!params.is_object()) return BadParams("tools/call params must be an object");
  const auto n = params.find("name");
  if (n == params.end() || !n->is_string()) return BadParams("name must be a string");
  CallToolParams p;
  p.name = n->get<std::string>();
  if (const auto a = params.find("arguments"); a != params.end() && !a->is_null()) {
    if (!a->is_object()) return BadParams("arguments must be an object");
    p.arguments = *a;
  }
  if (const auto m = params.find("_meta"); m != params.end() && m->is_object()) {
    if (const auto t = m->find("progressToken");
        t != m->end() && (t->is_string() || t->is_number())) {
      p.progress_token = *t;
    }
  }
  return p;
}

Json ToJson(const CallToolResult& r) {
  Json j = {{"content", Json::array({{{"type", "text"}, {"text", r.text}}})}};
  if (!r.structured.is_null()) j["structuredContent"] = r.structured;
  if (r.is_error) j["isError"] = true;
  return j;
}

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  for (std::size_t i = 0; i < kLevelNames.size(); ++i) {
    if (kLevelNames[i] == name) return static_cast<LogLevel>(i);
  }
  return std::nullopt;
}

std::string_view LogLevelName(LogLevel level) {
  return kLevelNames[static_cast<std::size_t>(level)];
}

Result<LogLevel> ParseSetLevelParams(const Json& params) {
  if (!params.is_object()) return BadParams("logging/setLevel params must be an object");
  const auto l = params.find("level");
  if (l == params.end() || !l->is_string()) return BadParams("level must be a string");
  auto level = ParseLogLevel(l->get<std::string>());
  if (!level) {
    return BadParams("level must be one of debug, info, notice, warning, error, critical, "
                     "alert, emergency");
  }
  return *level;
}

Json LogMessageParams(LogLevel level, std::string_view logger, const Json& data) {
  Json j = {{"level", LogLevelName(level)}, {"data", data}};
  if (!logger.empty()) j["logger"] = logger;
  return j;
}

Json ProgressParams(const Json& token, double progress, std::optional<double> total,
                    std::string_view message) {
  Json j = {{"progressToken", token}, {"progress", progress}};
  if (total) j["total"] = *total;
  if (!message.empty()) j["message"] = message;
  return j;
}

std::optional<Json> ParseCancelledRequestId(const Json& params) {
  if (!params.is_object()) return std::nullopt;
  const auto r = params.find("requestId");
  if (r == params.end() || !(r->is_string() || r->is_number())) return std::nullopt;
  return *r;
}

}  // namespace kpm::protocol
