#include "protocol/jsonrpc.h"

#include <algorithm>

#include <utility>

namespace kpm::protocol {
namespace {

std::string WithDetail(std::string_view base, std::string_view detail) {
  std::string s(base);
  if (!detail.empty()) {
    s += ": ";
    s += detail;
  }
  return s;
}

bool IsValidId(const Json& id) { return id.is_string() || id.is_number(); }

Message Invalid(Json id, RpcError error) {
  Message m;
  m.kind = Message::Kind::kInvalid;
  m.id = std::move(id);
  m.error = std::move(error);
  return m;
}

Message Ignored(std::string reason) {
  Message m;
  m.kind = Message::Kind::kIgnored;
  m.error.message = std::move(reason);
  return m;
}

}  // namespace

RpcError RpcError::ParseError(std::string_view detail) {
  return {kParseError, WithDetail("parse error", detail), nullptr};
}
RpcError RpcError::InvalidRequest(std::string_view detail) {
  return {kInvalidRequest, WithDetail("invalid request", detail), nullptr};
}
RpcError RpcError::MethodNotFound(std::string_view method) {
  return {kMethodNotFound, WithDetail("method not found", method), nullptr};
}
RpcError RpcError::InvalidParams(std::string_view detail) {
  return {kInvalidParams, WithDetail("invalid params", detail), nullptr};
}
RpcError RpcError::InternalError() { return {kInternalError, "internal error", nullptr}; }

/// Deepest nesting of arrays/objects in `text`, counted outside strings. Stops counting
/// once past `limit`. Cheap (one pass), so it runs before the parser.
static size_t NestingDepth(std::string_view text, size_t limit) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

Message Decode(std::string_view line) {
  // Copying, validating or printing a deeply nested value recurses: a line nested
  // 60 000 levels deep would overflow the stack. No MCP message needs more than a few.
  if (NestingDepth(line, kMaxNestingDepth) > kMaxNestingDepth) {
    return Invalid(nullptr, RpcError::InvalidRequest("nested deeper than " + std::to_string(kMaxNestingDepth) +
                                                     " levels"));
  }
  Json j = Json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Invalid(nullptr, RpcError::ParseError("not valid JSON"));
  if (j.is_array()) {
    return Invalid(nullptr, RpcError::InvalidRequest("batch requests are not supported"));
  }
  if (!j.is_object()) return Invalid(nullptr, RpcError::InvalidRequest("not an object"));

  const auto id_it = j.find("id");
  const auto method_it = j.find("method");
  const bool has_id = id_it != j.end();

  if (method_it == j.end()) {
    if (j.contains("result") || j.contains("error")) {
      return Ignored("a response from the client");  // we send no requests
    }
    Json id = has_id && IsValidId(*id_it) ? *id_it : Json();
    return Invalid(std::move(id), RpcError::InvalidRequest("missing method"));
  }

  if (!has_id) {
    // A notification: whatever is wrong with it, it is never answered.
    const auto v = j.find("jsonrpc");
    if (v == j.end() || *v != "2.0") return Ignored("notification without jsonrpc 2.0");
    if (!method_it->is_string()) return Ignored("notification with a non-string method");
    const auto p = j.find("params");
    if (p != j.end() && !p->is_object() && !p->is_array()) {
      return Ignored("notification with params that are not structured");
    }
    Message m;
    m.kind = Message::Kind::kNotification;
    m.method = method_it->get<std::string>();
    if (p != j.end()) m.params = *p;
    return m;
  }

  if (!IsValidId(*id_it)) {
    return Invalid(nullptr, RpcError::InvalidRequest("id must be a string or a number"));
  }
  Json id = *id_it;
  const auto v = j.find("jsonrpc");
  if (v == j.end() || *v != "2.0") {
    return Invalid(std::move(id), RpcError::InvalidRequest("jsonrpc must be \"2.0\""));
  }
  if (!method_it->is_string()) {
    return Invalid(std::move(id), RpcError::InvalidRequest("method must be a string"));
  }
  const auto p = j.find("params");
  if (p != j.end() && !p->is_object() && !p->is_array() && !p->is_null()) {
    return Invalid(std::move(id), RpcError::InvalidRequest("params must be an object or an array"));
  }
  Message m;
  m.kind = Message::Kind::kRequest;
  m.id = std::move(id);
  m.method = method_it->get<std::string>();
  if (p != j.end()) m.params = *p;
  return m;
}

std::string Serialize(const Json& value) {
  // Compact dump escapes control characters, so the line never holds a raw newline;
  // `replace` turns invalid UTF-8 (e.g. from an upstream) into U+FFFD instead of throwing.
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string EncodeResult(const Json& id, const Json& result) {
  Json j = {{"jsonrpc", "2.0"}, {"id", id}, {"result", result}};
  return Serialize(j);
}

std::string EncodeError(const Json& id, const RpcError& error) {
  Json err = {{"code", error.code}, {"message", error.message}};
  if (!error.data.is_null()) err["data"] = error.data;
  Json j = {{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(err)}};
  return Serialize(j);
}

std::string EncodeNotification(std::string_view method, const Json& params) {
  Json j = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) j["params"] = params;
  return Serialize(j);
}

std::string IdKey(const Json& id) { return Serialize(id); }

}  // namespace kpm::protocol
