// list_models: the models a provider offers, fetched through the pool (SPEC §5).

#include "keypool/failover.h"
#include "server/tools.h"

namespace kpm::server {

Tool MakeListModelsTool(LiveApp& live) {
  Tool t;
  t.name = "list_models";
  t.title = "List a provider's models";
  t.annotations = Json{{"readOnlyHint", true}, {"openWorldHint", true}};
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
  t.handler = [&live](const Json& args, ToolContext& ctx) -> ToolResult {
    std::shared_ptr<App> held = live.Get();  // this call's App, even if a reload replaces it
    if (!held) return live.Unavailable();
    App& app = *held;
    ProviderEntry* e = app.Default();
    if (args.contains("provider")) {
      e = app.Find(args["provider"].get<std::string>());
      if (!e) return UnknownProviderResult(app, args["provider"].get<std::string>());
    }
    keypool::TypedStep<std::vector<providers::ModelInfo>> step{
        e->pool.get(), [e, &ctx](const keypool::KeyLease& key, int64_t deadline) {
          providers::AttemptContext actx;
          actx.deadline_ms = deadline;
          actx.cancel = &ctx.cancel;
          keypool::Attempt<std::vector<providers::ModelInfo>> a;
          a.outcome = e->adapter->ListModels(key, actx, &a.value);
          return a;
        }};
    keypool::CallOptions options = CallOptionsFor(ctx, app.clock());
    auto typed = keypool::RunCall(std::vector{step}, options, app.clock());
    const keypool::CallResult& result = typed.call;
    const std::vector<providers::ModelInfo> models = typed.value.value_or(std::vector<providers::ModelInfo>{});
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

}  // namespace kpm::server
