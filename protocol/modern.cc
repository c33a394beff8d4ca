#include "protocol/modern.h"

#include <algorithm>
#include <utility>

namespace kpm::protocol {
namespace {

RequestEra Rejected(RpcError error) {
  RequestEra era;
  era.kind = RequestEra::Kind::kRejected;
  era.error = std::move(error);
  return era;
}

RequestEra InvalidEnvelope(std::string_view key, std::string_view problem) {
  return Rejected(RpcError::InvalidParams("_meta[\"" + std::string(key) + "\"] " + std::string(problem)));
}

bool IsModernVersion(std::string_view v) {
  return std::find(std::begin(kModernProtocolVersions), std::end(kModernProtocolVersions), v) !=
         std::end(kModernProtocolVersions);
}

}  // namespace

std::vector<std::string> SupportedProtocolVersions() {
  std::vector<std::string> all;
  for (std::string_view v : kModernProtocolVersions) all.emplace_back(v);
  for (std::string_view v : kProtocolVersions) all.emplace_back(v);
  return all;
}

RequestEra ClassifyRequest(const Json& params) {
  if (!params.is_object()) return {};
  const auto meta = params.find("_meta");
  if (meta == params.end() || !meta->is_object()) return {};
  const auto version = meta->find(kProtocolVersionMetaKey);
  if (version == meta->end()) return {};  // no claim: a legacy request, served as before

  if (!version->is_string()) return InvalidEnvelope(kProtocolVersionMetaKey, "must be a string");
  const std::string requested = version->get<std::string>();
  if (!IsModernVersion(requested)) {
    return Rejected(RpcError::UnsupportedProtocolVersion(requested, SupportedProtocolVersions()));
  }

  RequestEra era;
  era.kind = RequestEra::Kind::kModern;
  era.envelope.protocol_version = requested;
  const auto caps = meta->find(kClientCapabilitiesMetaKey);
  if (caps == meta->end()) return InvalidEnvelope(kClientCapabilitiesMetaKey, "is required");
  if (!caps->is_object()) return InvalidEnvelope(kClientCapabilitiesMetaKey, "must be an object");
  if (const auto info = meta->find(kClientInfoMetaKey); info != meta->end()) {
    const auto name = info->is_object() ? info->find("name") : info->end();
    const auto ver = info->is_object() ? info->find("version") : info->end();
    if (!info->is_object() || name == info->end() || !name->is_string() || ver == info->end() || !ver->is_string()) {
      return InvalidEnvelope(kClientInfoMetaKey, "must be an object with string name and version");
    }
    era.envelope.client_name = name->get<std::string>();
    era.envelope.client_version = ver->get<std::string>();
  }
  if (const auto level = meta->find(kLogLevelMetaKey); level != meta->end()) {
    const auto parsed = level->is_string() ? ParseLogLevel(level->get<std::string>()) : std::nullopt;
    if (!parsed) {
      return InvalidEnvelope(kLogLevelMetaKey,
                             "must be one of debug, info, notice, warning, error, critical, alert, emergency");
    }
    era.envelope.log_level = *parsed;
  }
  return era;
}

bool IsModernMethod(std::string_view method) {
  return method == "tools/call" || method == "tools/list" || method == "server/discover";
}

Json ModernResult(Json result, std::string_view server_name, std::string_view server_version) {
  if (!result.is_object()) return result;
  result["resultType"] = "complete";
  Json& meta = result["_meta"];
  if (!meta.is_object()) meta = Json::object();
  meta[std::string(kServerInfoMetaKey)] = {{"name", server_name}, {"version", server_version}};
  return result;
}

Json WithCacheHint(Json result, const CacheHint& hint) {
  result["ttlMs"] = std::max<std::int64_t>(hint.ttl_ms, 0);
  result["cacheScope"] = hint.public_scope ? "public" : "private";
  return result;
}

Json ToJson(const DiscoverResult& r) {
  Json j = {{"supportedVersions", r.supported_versions}, {"capabilities", ServerCapabilities()}};
  if (!r.instructions.empty()) j["instructions"] = r.instructions;
  return WithCacheHint(std::move(j), r.cache);
}

}  // namespace kpm::protocol
