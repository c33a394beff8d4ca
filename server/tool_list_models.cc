// list_models: the models a provider offers, fetched through the pool (SPEC §5),
// and the registration of all four tools.
#include <mutex>

#include "keypool/failover.h"
#include "server/tool_registry.h"
#include "server/tools.h"

namespace kpm::server {

Tool MakeListModelsTool(App& app) {
  Tool t;
  t.name = "list_models";
  t.title = "List a provider's models";
  t.description =
      "Lists the models a provider offers (fetched from the upstream through the key pool, with the "
      "same failover as `complete`).";
  t.input_schema = {{"type", "object"},
                    {"properties",
                     {{"provider", {{"type", "string"}, {"description", "Provider name (default: the default provider)."}}}}},
                    {"additionalProperties", false}};
  t.output_schema = {
      {"type", "object"},
      {"properties",
       {{"provider", {{"type", "string"}}},
        {"models",
         {{"type", "array"},
          {"items",
           {{"type", "object"},
            {"properties", {{"id", {{"type", "string"}}}, {"name", {{"type", "string"}}}}},
            {"required", {"id"}}}}}},
        {"attempts", {{"type", "array"}}}}},
      {"required", {"provider", "models"}}};
  t.handler = [&app](const Json& args, ToolContext& ctx) -> ToolResult {
    ProviderEntry* e = app.Default();
    if (args.contains("provider")) {
      e = app.Find(args["provider"].get<std::string>());
      if (!e) return UnknownProviderResult(app, args["provider"].get<std::string>());
    }
    std::vector<providers::ModelInfo> models;  // attempts run on this thread: no lock
    keypool::ChainStep attempt{e->pool.get(), [e, &ctx, &models](const keypool::KeyLease& key, int64_t deadline) {
                                   providers::AttemptContext actx;
                                   actx.deadline_ms = deadline;
                                   actx.cancel = &ctx.cancel;
                                   std::vector<providers::ModelInfo> got;
                                   keypool::AttemptOutcome out = e->adapter->ListModels(key, actx, &got);
                                   if (out.outcome == keypool::Outcome::kOk) models = std::move(got);
                                   return out;
                                 }};
    keypool::CallOptions options;
    options.cancel = &ctx.cancel;
    keypool::CallResult result = keypool::RunCall({attempt}, options, app.clock());
    ToolResult r;
    if (result.outcome != keypool::Outcome::kOk) {
      r.is_error = true;
      r.text = app.scrubber().Scrub(result.message);
      r.structured = {{"error", {{"class", std::string(keypool::OutcomeName(result.outcome))}, {"message", r.text}}},
                      {"attempts", AttemptsToJson(result.attempts)}};
      return r;
    }
    Json list = Json::array();
    for (const auto& m : models) {
      Json j = {{"id", m.id}};
      if (!m.name.empty()) j["name"] = m.name;
      list.push_back(j);
      r.text += m.id + (m.name.empty() || m.name == m.id ? "" : "  (" + m.name + ")") + "\n";
    }
    if (models.empty()) r.text = "(no models)\n";
    r.structured = {{"provider", e->config.name}, {"models", list}, {"attempts", AttemptsToJson(result.attempts)}};
    return r;
  };
  return t;
}

Status App::RegisterTools(ToolRegistry& registry) {
  for (Tool t : {MakeCompleteTool(*this), MakeKeyStatusTool(*this), MakeCheckKeysTool(*this), MakeListModelsTool(*this)}) {
    Status s = registry.Add(std::move(t));
    if (!s) return s;
  }
  return Ok{};
}

}  // namespace kpm::server
