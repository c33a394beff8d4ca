#pragma once
/// JSON-RPC 2.0 over "one message per line": decode one line into a message (or the
/// error reply it deserves), encode replies and notifications. No I/O, no logging.
/// Every error that reaches the wire is built by RpcError's factories and serialised
/// by EncodeError (STYLE.md §3: errors reach the wire in one function).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kpm::protocol {

using Json = nlohmann::json;

/// JSON-RPC 2.0 error codes; the only place they are spelled.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
/// MCP 2026-07-28: the request's protocol version is not one the server serves.
inline constexpr int kUnsupportedProtocolVersion = -32022;

/// Deepest array/object nesting accepted in one message; deeper lines get -32600.
inline constexpr size_t kMaxNestingDepth = 64;

/// Longest message line accepted (without its '\n'): 16 MiB. A longer line is answered
/// -32600 "message too long" (DecodeTooLong) and the next line is read as usual.
inline constexpr size_t kMaxMessageBytes = 16u << 20;

/// How much of the start and of the end of an over-long line is kept to find its id in
/// (DecodeTooLong).
inline constexpr size_t kIdScanBytes = 64u << 10;

/// A JSON-RPC error object. Build one through the factories so that codes and
/// messages stay consistent.
struct RpcError {
  int code = kInternalError;
  std::string message;
  Json data;  ///< optional; omitted from the wire when null

  static RpcError ParseError(std::string_view detail = {});
  static RpcError InvalidRequest(std::string_view detail = {});
  static RpcError MethodNotFound(std::string_view method);
  static RpcError InvalidParams(std::string_view detail);
  /// -32022 with data {supported, requested} (schema 2026-07-28
  /// UnsupportedProtocolVersionError); the message names both too.
  static RpcError UnsupportedProtocolVersion(std::string_view requested,
                                             const std::vector<std::string>& supported);
  /// Always the bare text "internal error": details belong in the stderr log only.
  static RpcError InternalError();
};

/// One decoded incoming line.
struct Message {
  enum class Kind {
    kRequest,       ///< has an id: must get exactly one reply
    kNotification,  ///< no id: never replied to
    kIgnored,       ///< a response from the client, or a broken notification: no reply
    kInvalid,       ///< reply at once with EncodeError(id, error)
  };
  Kind kind = Kind::kInvalid;
  Json id;              ///< string or number for kRequest; null otherwise (or for kInvalid
                        ///< when the id could not be recovered)
  /// The id exactly as the client wrote it, for a number id that nlohmann holds as a
  /// double (a fraction, an exponent, or an integer beyond 64 bits: 18446744073709551616);
  /// empty otherwise. Replies echo this text (EncodeResult/EncodeError), so the client
  /// gets back the very id it sent, not a rounded 1.8446744073709552e+19.
  std::string id_text;
  std::string method;   ///< for kRequest / kNotification
  Json params;          ///< object or array, or null when absent
  RpcError error;       ///< for kInvalid; for kIgnored a human-readable reason in message
};

/// Decodes one line (without its '\n'). Never throws. Rules:
/// - nested deeper than kMaxNestingDepth -> kInvalid, -32600, id null (checked first);
/// - a NUL byte anywhere (JSON never has a raw one) -> kInvalid, -32700, id null;
/// - not JSON -> kInvalid, -32700, id null;
/// - an array (a batch, unsupported) or a non-object -> kInvalid, -32600, id null;
/// - a message with "method" but no "id" is a notification; if it is malformed it is
///   kIgnored (notifications are never answered);
/// - "id" present but null or not a string/number -> kInvalid, -32600, id null;
/// - "jsonrpc" != "2.0", "method" not a string, "params" not object/array -> kInvalid,
///   -32600 with the request's id;
/// - no "method" but "result"/"error" -> a response from the client: kIgnored.
Message Decode(std::string_view line);

/// The reply owed to a line longer than `limit_bytes`, of which only `head` and `tail`
/// (its first and last bytes, kIdScanBytes or so each) were kept: kInvalid, -32600
/// "message too long", with the id of a top-level "id" member (a string or a number)
/// found whole in either, else id null. `tail` is read backwards from the object's
/// closing '}' (clients that write `id` last); `head` forwards, where a number cut off by
/// its end does not count (it might be longer). A duplicate "id" in `tail` wins.
Message DecodeTooLong(std::string_view head, std::string_view tail, size_t limit_bytes);

/// Serialises `value` as one line: compact, no newline, invalid UTF-8 replaced by
/// U+FFFD instead of throwing.
std::string Serialize(const Json& value);

/// {"jsonrpc":"2.0","id":id,"result":result} as one line. `id_text`, when not empty, is
/// Message::id_text and is written in place of `id` (it is checked to be number text).
std::string EncodeResult(const Json& id, const Json& result, std::string_view id_text = {});
/// {"jsonrpc":"2.0","id":id,"error":{code,message,data?}} as one line; `id_text` as above.
std::string EncodeError(const Json& id, const RpcError& error, std::string_view id_text = {});
/// {"jsonrpc":"2.0","method":method,"params":params?} as one line (params omitted when null).
std::string EncodeNotification(std::string_view method, const Json& params);

/// A stable map key for an id: "1" and 1 are different ids. Numbers are keyed by value
/// (1.0 and 1.00 are one id; two integers beyond 64 bits that round to the same double
/// are one id too, so the second is refused while the first is in flight).
std::string IdKey(const Json& id);

}  // namespace kpm::protocol
