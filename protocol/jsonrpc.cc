#include "protocol/jsonrpc.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "common/json_depth.h"

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

/// Finds the top-level "id" member of a JSON object as SAX events go by, keeping a
/// number's text as written. The last "id" wins, as in nlohmann's DOM. Used on a whole
/// line (for the text of a number id the DOM holds as a double) and on the head of an
/// over-long line (whatever came before the cut). A SAX pass never recurses.
class IdScanner : public nlohmann::json_sax<Json> {
 public:
  /// The id found: a string or a number, or null when the last "id" was something else.
  std::optional<Json> id;
  std::string text;  ///< for a number id: its text as written

  bool null() override { return Value(nullptr); }
  bool boolean(bool) override { return Value(nullptr); }
  bool number_integer(number_integer_t v) override { return Value(Json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return Value(Json(v)); }
  bool number_float(number_float_t v, const string_t& raw) override { return Value(Json(v), raw); }
  bool string(string_t& v) override { return Value(Json(std::move(v))); }
  bool binary(binary_t&) override { return Value(nullptr); }
  bool start_object(std::size_t) override { return Open(true); }
  bool start_array(std::size_t) override { return Open(false); }
  bool end_object() override { return Close(); }
  bool end_array() override { return Close(); }
  bool key(string_t& k) override {
    id_value_next_ = depth_ == 1 && top_is_object_ && k == "id";
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;  // the head of a cut line ends in one; what came before stands
  }

 private:
  bool Value(Json v, const std::string& raw = {}) {
    if (id_value_next_ && depth_ == 1) {
      id_value_next_ = false;
      const bool ok = v.is_string() || v.is_number();
      text = ok && v.is_number_float() ? raw : std::string();
      id = ok ? std::move(v) : Json();
    }
    return true;
  }
  bool Open(bool object) {
    if (depth_ == 0) top_is_object_ = object;
    if (depth_ == 1 && id_value_next_) Value(nullptr);  // an object or array id: invalid
    ++depth_;
    return true;
  }
  bool Close() {
    if (depth_ > 0) --depth_;
    return true;
  }

  int depth_ = 0;
  bool top_is_object_ = false;
  bool id_value_next_ = false;
};

/// Runs an IdScanner over `text`; never throws (the SAX parser reports, not throws).
IdScanner ScanForId(std::string_view text) {
  IdScanner scanner;
  Json::sax_parse(text.begin(), text.end(), &scanner, Json::input_format_t::json, /*strict=*/false);
  return scanner;
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
RpcError RpcError::UnsupportedProtocolVersion(std::string_view requested,
                                              const std::vector<std::string>& supported) {
  // The message quotes at most 64 bytes of what the client sent; data echoes all of it.
  std::string message = "unsupported protocol version \"" + std::string(requested.substr(0, 64)) +
                        (requested.size() > 64 ? "...\"" : "\"") + "; this server supports";
  for (std::size_t i = 0; i < supported.size(); ++i) message += (i == 0 ? " " : ", ") + supported[i];
  return {kUnsupportedProtocolVersion, std::move(message),
          Json{{"supported", supported}, {"requested", requested}}};
}
RpcError RpcError::InternalError() { return {kInternalError, "internal error", nullptr}; }

Message Decode(std::string_view line) {
  // Copying, validating or printing a deeply nested value recurses: a line nested
  // 60 000 levels deep would overflow the stack. No MCP message needs more than a few.
  if (FindJsonTooDeep(line, kMaxNestingDepth)) {
    return Invalid(nullptr, RpcError::InvalidRequest("nested deeper than " + std::to_string(kMaxNestingDepth) +
                                                     " levels"));
  }
  // nlohmann's lexer takes a NUL byte for the end of the input (C strings), so
  // `{...ping...}\0{...}` would parse as the ping and drop the rest unseen. A raw NUL is
  // never valid JSON (inside a string it must be written \u0000): the whole line is.
  if (line.find('\0') != std::string_view::npos) {
    return Invalid(nullptr, RpcError::ParseError("the line contains a NUL byte (write it as \\u0000 in a string)"));
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
  // A number nlohmann holds as a double is echoed as written, not as the double's text:
  // an integer id past 2^64-1 (which a client may well use, e.g. a 128-bit counter) would
  // come back rounded and the client could never match the reply. Accepting it (rather
  // than refusing it with -32600) costs nothing: ids are only echoed and used as map keys.
  // A second, SAX-only pass over the line, for these rare ids only.
  std::string id_text;
  if (id.is_number_float()) id_text = ScanForId(line).text;
  auto refuse = [&](std::string_view why) {
    Message m = Invalid(std::move(id), RpcError::InvalidRequest(why));
    m.id_text = std::move(id_text);
    return m;
  };
  const auto v = j.find("jsonrpc");
  if (v == j.end() || *v != "2.0") return refuse("jsonrpc must be \"2.0\"");
  if (!method_it->is_string()) return refuse("method must be a string");
  const auto p = j.find("params");
  if (p != j.end() && !p->is_object() && !p->is_array() && !p->is_null()) {
    return refuse("params must be an object or an array");
  }
  Message m;
  m.kind = Message::Kind::kRequest;
  m.id = std::move(id);
  m.id_text = std::move(id_text);
  m.method = method_it->get<std::string>();
  if (p != j.end()) m.params = *p;
  return m;
}

namespace {

/// Reads the top-level members of a JSON object backwards from its closing '}', for the
/// tail of a line whose start is gone: the official TypeScript SDK writes `id` after
/// `params` ({...request, jsonrpc, id}), so a 20 MiB prompt puts it at the very end.
/// Backwards is sound for JSON: a '"' inside a string always follows an odd run of
/// backslashes, so the opening quote is the first '"' before that follows an even one.
/// Anything unexpected, or reaching the start of the excerpt, ends the search.
class TailIdFinder {
 public:
  explicit TailIdFinder(std::string_view text) : s_(text), pos_(text.size()) {}

  /// The last top-level "id" value as written (its JSON text), or empty.
  std::string_view Find() {
    if (!Expect('}')) return {};
    SkipSpace();
    if (Peek() == '{') return {};  // an empty object
    for (;;) {
      SkipSpace();
      const size_t value_end = pos_;
      if (!SkipValue()) return {};
      std::string_view value = s_.substr(pos_, value_end - pos_);
      if (!Expect(':')) return {};
      SkipSpace();
      const size_t key_end = pos_;
      if (!SkipString()) return {};
      if (s_.substr(pos_, key_end - pos_) == "\"id\"") return value;
      SkipSpace();
      if (Peek() == '{') return {};  // the first member: no (unescaped) "id"
      if (!Expect(',')) return {};
    }
  }

 private:
  char Peek() const { return pos_ > 0 ? s_[pos_ - 1] : '\0'; }
  void SkipSpace() {
    while (pos_ > 0 && (s_[pos_ - 1] == ' ' || s_[pos_ - 1] == '\t' || s_[pos_ - 1] == '\r')) --pos_;
  }
  bool Expect(char c) {
    SkipSpace();
    if (Peek() != c) return false;
    --pos_;
    return true;
  }
  /// A string that ends at pos_ (its closing quote just before it).
  bool SkipString() {
    if (Peek() != '"') return false;
    --pos_;
    while (pos_ > 0) {
      const size_t quote = s_.rfind('"', pos_ - 1);
      if (quote == std::string_view::npos) return false;
      size_t backslashes = 0;
      while (quote > backslashes && s_[quote - 1 - backslashes] == '\\') ++backslashes;
      pos_ = quote;
      if (backslashes % 2 == 0) return true;
    }
    return false;
  }
  bool SkipValue() {
    SkipSpace();
    const char c = Peek();
    if (c == '"') return SkipString();
    if (c == '}' || c == ']') {
      size_t depth = 0;
      while (pos_ > 0) {
        const char d = Peek();
        if (d == '"') {
          if (!SkipString()) return false;
          continue;
        }
        --pos_;
        if (d == '}' || d == ']') ++depth;
        if ((d == '{' || d == '[') && --depth == 0) return true;
      }
      return false;
    }
    const size_t end = pos_;
    while (pos_ > 0 && std::string_view("0123456789+-.eEtrufalsn").find(Peek()) != std::string_view::npos) --pos_;
    // A run that reaches the start of the excerpt may have been cut: not a whole value.
    return pos_ < end && pos_ > 0;
  }

  std::string_view s_;
  size_t pos_;  // one past the next character to read (backwards)
};

}  // namespace

Message DecodeTooLong(std::string_view head, std::string_view tail, size_t limit_bytes) {
  std::string limit = std::to_string(limit_bytes) + " bytes";
  if (limit_bytes % (1u << 20) == 0) limit += " (" + std::to_string(limit_bytes >> 20) + " MiB)";
  Message m = Invalid(nullptr, RpcError::InvalidRequest("message too long: a line may hold at most " + limit));
  // The end of the line first: a later "id" is the one a parser would keep.
  if (std::string_view text = TailIdFinder(tail).Find(); !text.empty()) {
    Json id = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (id.is_string() || id.is_number()) {
      m.id_text = id.is_number_float() ? std::string(text) : std::string();
      m.id = std::move(id);
      return m;
    }
  }
  // A number at the very end of the head may go on past the cut ("id":12|345): drop it.
  const size_t keep = head.find_last_not_of("0123456789+-.eE");
  head = keep == std::string_view::npos ? std::string_view() : head.substr(0, keep + 1);
  IdScanner scanner = ScanForId(head);
  m.id = scanner.id.value_or(Json());
  m.id_text = std::move(scanner.text);
  return m;
}

std::string Serialize(const Json& value) {
  // Compact dump escapes control characters, so the line never holds a raw newline;
  // `replace` turns invalid UTF-8 (e.g. from an upstream) into U+FFFD instead of throwing.
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

namespace {

/// Only what nlohmann's lexer accepts as a number gets here, but the check keeps a
/// caller's mistake from putting anything else (a quote, a newline) on the wire.
bool IsNumberText(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789+-.eE") == std::string_view::npos;
}

/// {"<member>":<body>,"id":<id>,"jsonrpc":"2.0"}: the envelope as nlohmann would write it
/// (keys in sorted order), with the id spliced in as text so `id_text` is echoed verbatim.
std::string Envelope(const Json& id, std::string_view id_text, std::string_view member, const Json& body) {
  const std::string id_json = IsNumberText(id_text) ? std::string(id_text) : Serialize(id);
  std::string body_json = Serialize(body);
  std::string out;
  out.reserve(body_json.size() + id_json.size() + 40);
  if (member == "error") {  // "error" < "id" < "jsonrpc"
    out.append("{\"error\":").append(body_json).append(",\"id\":").append(id_json);
    out.append(",\"jsonrpc\":\"2.0\"}");
  } else {  // "id" < "jsonrpc" < "result"
    out.append("{\"id\":").append(id_json).append(",\"jsonrpc\":\"2.0\",\"result\":").append(body_json);
    out.append("}");
  }
  return out;
}

}  // namespace

std::string EncodeResult(const Json& id, const Json& result, std::string_view id_text) {
  return Envelope(id, id_text, "result", result);
}

std::string EncodeError(const Json& id, const RpcError& error, std::string_view id_text) {
  Json err = {{"code", error.code}, {"message", error.message}};
  if (!error.data.is_null()) err["data"] = error.data;
  return Envelope(id, id_text, "error", err);
}

std::string EncodeNotification(std::string_view method, const Json& params) {
  Json j = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) j["params"] = params;
  return Serialize(j);
}

std::string IdKey(const Json& id) { return Serialize(id); }

}  // namespace kpm::protocol
