#pragma once
/// The modern (2026-07-28) era of MCP next to the legacy (2025) one: a request that
/// carries the per-request `_meta` envelope is served statelessly, without initialize;
/// its results carry `resultType` (and, on cacheable results, `ttlMs`/`cacheScope`).
/// Spec: specification/2026-07-28/basic/index.mdx (`_meta`, error codes),
/// basic/versioning.mdx (negotiation, dual-era servers), server/discover.mdx,
/// server/utilities/caching.mdx and logging.mdx; schema/2026-07-28/schema.ts.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/jsonrpc.h"
#include "protocol/mcp.h"

namespace kpm::protocol {

/// Modern revisions we serve through the per-request envelope, newest first.
inline constexpr std::string_view kModernProtocolVersions[] = {"2026-07-28"};

/// The reserved `_meta` keys of the envelope (requests) and of results.
inline constexpr std::string_view kProtocolVersionMetaKey = "io.modelcontextprotocol/protocolVersion";
inline constexpr std::string_view kClientCapabilitiesMetaKey = "io.modelcontextprotocol/clientCapabilities";
inline constexpr std::string_view kClientInfoMetaKey = "io.modelcontextprotocol/clientInfo";
inline constexpr std::string_view kLogLevelMetaKey = "io.modelcontextprotocol/logLevel";
inline constexpr std::string_view kServerInfoMetaKey = "io.modelcontextprotocol/serverInfo";

/// Every revision we speak, modern first then kProtocolVersions: what -32022 lists.
std::vector<std::string> SupportedProtocolVersions();

/// What a modern request's `params._meta` declares.
struct RequestEnvelope {
  std::string protocol_version;
  std::optional<std::string> client_name;  ///< clientInfo.name, when clientInfo was sent
  std::string client_version;              ///< clientInfo.version (with client_name)
  /// io.modelcontextprotocol/logLevel: notifications/message at or above it may be sent
  /// for this request; nullopt: none may (logging.mdx: "MUST NOT emit").
  std::optional<LogLevel> log_level;
};

/// The era of one request, read from its params.
struct RequestEra {
  enum class Kind {
    kLegacy,    ///< no envelope claim: served as before (2025 revisions)
    kModern,    ///< a valid envelope: `envelope` holds it
    kRejected,  ///< an envelope claim that must be answered with `error`
  };
  Kind kind = Kind::kLegacy;
  RequestEnvelope envelope;
  RpcError error;
};

/// Classifies a request by `params._meta`. The envelope claim is the key
/// io.modelcontextprotocol/protocolVersion in a `_meta` object (the TypeScript SDK's
/// test too); without it the request is kLegacy. With it, in this order (the SDK's
/// validation ladder): a version that is not a string -> -32602; one we do not serve
/// through the envelope (unknown, or a 2025 one) -> -32022 UnsupportedProtocolVersion
/// with data {supported, requested}; clientCapabilities missing or not an object,
/// clientInfo present without string name and version, or logLevel not a level ->
/// -32602 naming the key.
RequestEra ClassifyRequest(const Json& params);

/// The method set of the modern revision that this server implements (tools/call,
/// tools/list, server/discover). ping, initialize and logging/setLevel are not in it.
bool IsModernMethod(std::string_view method);

/// A result as modern clients need it: `resultType: "complete"` and
/// `_meta["io.modelcontextprotocol/serverInfo"] = {name, version}` added (other `_meta`
/// members kept). A non-object `result` is returned as it is.
Json ModernResult(Json result, std::string_view server_name, std::string_view server_version);

/// caching.mdx: how long a result may be considered fresh, and who may cache it.
struct CacheHint {
  std::int64_t ttl_ms = 0;    ///< >= 0 (negative values are written as 0)
  bool public_scope = false;  ///< "public" or "private"
};
/// `result` with ttlMs and cacheScope set.
Json WithCacheHint(Json result, const CacheHint& hint);

/// server/discover's result (before ModernResult).
struct DiscoverResult {
  std::vector<std::string> supported_versions;  ///< modern revisions (a client picks one)
  std::string instructions;                     ///< omitted when empty
  CacheHint cache;
};
/// {supportedVersions, capabilities (as initialize's), instructions?, ttlMs, cacheScope}.
Json ToJson(const DiscoverResult& r);

}  // namespace kpm::protocol
