// key_status and check_keys: where the pool stands (SPEC §5).
#include "server/tools.h"

#include <chrono>

#include "server/pool_view.h"

namespace kpm::server {
namespace {

Json ProviderArgSchema() {
  return {{"type", "object"},
          {"properties",
           {{"provider", {{"type", "string"}, {"description", "Only this provider (default: every provider)."}}}}},
          {"additionalProperties", false}};
}

Json PoolsOutputSchema() {
  Json key = {{"type", "object"},
              {"properties",
               {{"label", {{"type", "string"}}},
                {"fingerprint", {{"type", "string"}}},
                {"endpoint", {{"type", "string"}}},
                {"state", {{"type", "string"}, {"enum", {"ready", "cooling_down", "disabled"}}}},
                {"reason", {{"type", "string"}}},
                {"ready_in_ms", {{"type", "integer"}}},
                {"requests", {{"type", "integer"}}},
                {"failures", {{"type", "integer"}}},
                {"last_status", {{"type", "integer"}}},
                {"last_error", {{"type", "string"}}},
                {"last_used", {{"type", "integer"}}}}},
              {"required", {"label", "fingerprint", "state", "requests", "failures"}}};
  Json provider = {{"type", "object"},
                   {"properties",
                    {{"name", {{"type", "string"}}},
                     {"type", {{"type", "string"}}},
                     {"model", {{"type", {"string", "null"}}}},
                     {"strategy", {{"type", "string"}}},
                     {"active_key", {{"type", {"string", "null"}}}},
                     {"keys", {{"type", "array"}, {"items", key}}}}},
                   {"required", {"name", "type", "strategy", "active_key", "keys"}}};
  return {{"type", "object"},
          {"properties", {{"providers", {{"type", "array"}, {"items", provider}}}}},
          {"required", {"providers"}}};
}

/// The providers selected by the optional `provider` argument, or an error result.
std::optional<ToolResult> SelectProviders(App& app, const Json& args, std::vector<ProviderEntry*>* out) {
  if (args.contains("provider")) {
    std::string name = args["provider"].get<std::string>();
    ProviderEntry* e = app.Find(name);
    if (!e) return UnknownProviderResult(app, name);
    out->push_back(e);
  } else {
    *out = app.All();
  }
  return std::nullopt;
}

}  // namespace

PoolView ViewOf(const ProviderEntry& e, keypool::PoolSnapshot snapshot) {
  std::string model = e.config.model.empty() ? providers::DefaultModel(e.config.type) : e.config.model;
  return {std::string(providers::ProviderTypeName(e.config.type)), std::move(snapshot), e.config.base_url, model};
}

std::vector<PoolView> Views(const std::vector<ProviderEntry*>& entries) {
  std::vector<PoolView> views;
  for (ProviderEntry* e : entries) {
    views.push_back(ViewOf(*e, e->pool->Snapshot()));
  }
  return views;
}

Json ViewsToJson(const std::vector<PoolView>& views) {
  Json providers_json = Json::array();
  for (const auto& v : views) providers_json.push_back(PoolToJson(v));
  return providers_json;
}

keypool::CallOptions CallOptionsFor(const ToolContext& ctx, const keypool::Clock& clock) {
  keypool::CallOptions options;
  options.cancel = &ctx.cancel;
  const auto queued = std::chrono::steady_clock::now() - ctx.arrived;
  options.arrived_ms = clock.NowMs() - std::chrono::duration_cast<std::chrono::milliseconds>(queued).count();
  return options;
}

ToolResult UnknownProviderResult(App& app, const std::string& name) {
  std::string names;
  for (ProviderEntry* e : app.All()) names += (names.empty() ? "" : ", ") + e->config.name;
  ToolResult r;
  r.is_error = true;
  r.text = "provider: unknown provider \"" + name + "\"; configured: " + names;
  return r;
}

Tool MakeKeyStatusTool(LiveApp& live) {
  Tool t;
  t.name = "key_status";
  t.title = "Key pool status";
  t.annotations = Json{{"readOnlyHint", true}, {"openWorldHint", false}};
  t.description =
      "Shows every API key of every provider (or one provider): label, fingerprint, state "
      "(ready, cooling_down, disabled), why, when a cooling key is ready again, and counters. "
      "No upstream request is made.";
  t.input_schema = ProviderArgSchema();
  t.output_schema = PoolsOutputSchema();
  t.runs_inline = true;  // a read of the pools: answered at once, however busy the server
  t.handler = [&live](const Json& args, ToolContext&) -> ToolResult {
    std::shared_ptr<App> held = live.Get();  // this call's App, even if a reload replaces it
    if (!held) return live.Unavailable();
    App& app = *held;
    std::vector<ProviderEntry*> entries;
    if (auto err = SelectProviders(app, args, &entries)) return *err;
    auto views = Views(entries);
    ToolResult r;
    r.structured = {{"providers", ViewsToJson(views)}};
    r.text = RenderPoolsTable(views);
    return r;
  };
  return t;
}

Tool MakeCheckKeysTool(LiveApp& live) {
  Tool t;
  t.name = "check_keys";
  t.title = "Check API keys";
  // Sends one small request per key and records what it learns about each.
  t.annotations = Json{{"readOnlyHint", false}, {"destructiveHint", false}, {"idempotentHint", true},
                       {"openWorldHint", true}};
  t.description =
      "Runs a health check on every key (or one provider's keys): one cheap authenticated request per "
      "key, no completion spent. A passing check brings a revoked-then-fixed key back; returns the "
      "same shape as key_status plus the result of each check.";
  t.input_schema = ProviderArgSchema();
  Json out = PoolsOutputSchema();
  out["properties"]["checks"] = {
      {"type", "array"},
      {"items",
       {{"type", "object"},
        {"properties",
         {{"provider", {{"type", "string"}}},
          {"key", {{"type", "string"}}},
          {"outcome", {{"type", "string"}}},
          {"detail", {{"type", "string"}}}}}}}};
  t.output_schema = out;
  t.handler = [&live](const Json& args, ToolContext& ctx) -> ToolResult {
    std::shared_ptr<App> held = live.Get();  // this call's App, even if a reload replaces it
    if (!held) return live.Unavailable();
    App& app = *held;
    std::vector<ProviderEntry*> entries;
    if (auto err = SelectProviders(app, args, &entries)) return *err;
    std::string only = entries.size() == 1 && args.contains("provider") ? entries[0]->config.name : "";
    ctx.progress(0, std::nullopt, "checking keys");
    std::vector<KeyCheck> checks = app.CheckKeys(only, &ctx.cancel);
    Json checks_json = Json::array();
    std::string text;
    for (const auto& c : checks) {
      checks_json.push_back({{"provider", c.provider},
                             {"key", c.key.label + " " + c.key.fingerprint},
                             {"outcome", std::string(keypool::OutcomeName(c.outcome))},
                             {"detail", c.detail}});
    }
    auto views = Views(entries);
    ToolResult r;
    r.structured = {{"providers", ViewsToJson(views)}, {"checks", checks_json}};
    r.text = RenderPoolsTable(views);
    for (const auto& c : checks) {
      r.text += c.provider + " " + c.key.label + " " + c.key.fingerprint + ": " +
                std::string(keypool::OutcomeName(c.outcome)) + (c.detail.empty() ? "" : " (" + c.detail + ")") + "\n";
    }
    return r;
  };
  return t;
}

}  // namespace kpm::server
