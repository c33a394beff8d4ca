// complete: one completion through the pool (SPEC §5). The failover decisions
// themselves are made in keypool/failover.cc; this file only adapts.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "keypool/failover.h"
#include "server/complete_schema.h"
#include "server/tools.h"

namespace kpm::server {
namespace {

Json OutputSchema() {
  Json attempt = {{"type", "object"},
                  {"properties",
                   {{"provider", {{"type", "string"}}},
                    {"key", {{"type", "string"}}},
                    {"outcome", {{"type", "string"}}},
                    {"status", {{"type", "integer"}}},
                    {"message", {{"type", "string"}}},
                    {"elapsed_ms", {{"type", "integer"}}}}},
                  {"required", {"provider", "key", "outcome", "elapsed_ms"}}};
  return {{"type", "object"},
          {"properties",
           {{"text", {{"type", "string"}}},
            {"provider", {{"type", "string"}}},
            {"model", {{"type", "string"}}},
            {"key", {{"type", "string"}}},
            {"finish_reason", {{"type", "string"}}},
            {"usage",
             {{"type", "object"},
              {"properties", {{"input_tokens", {{"type", "integer"}}}, {"output_tokens", {{"type", "integer"}}}}}}},
            {"attempts", {{"type", "array"}, {"items", attempt}}}}},
          {"required", {"text", "provider", "model", "key", "finish_reason", "usage", "attempts"}}};
}

ToolResult ArgError(const std::string& text) {
  ToolResult r;
  r.is_error = true;
  r.text = text;
  return r;
}

}  // namespace

Tool MakeCompleteTool(LiveApp& live) {
  Tool t;
  t.name = "complete";
  t.title = "Complete through the key pool";
  // Reaches a model provider over the network; does not change anything of the user's.
  t.annotations = Json{{"readOnlyHint", false}, {"destructiveHint", false}, {"openWorldHint", true}};
  t.description =
      "Runs one model completion through the provider's pool of API keys. A key that is rate limited, "
      "out of credit, revoked or failing is skipped automatically and the call moves to the next key "
      "(and then to fallback providers); `attempts` shows every key tried. Without `provider` the "
      "default provider answers; without `model` each provider uses its default model (`key_status` "
      "lists the providers, their default models and keys).";
  t.input_schema = CompleteInputSchema();
  t.output_schema = OutputSchema();
  t.handler = [&live](const Json& args, ToolContext& ctx) -> ToolResult {
    std::shared_ptr<App> held = live.Get();  // this call's App, even if a reload replaces it
    if (!held) return live.Unavailable();
    App& app = *held;
    providers::CompletionRequest req;
    if (args.contains("messages")) {
      for (const auto& m : args["messages"]) {
        req.messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
      }
    }
    if (args.contains("prompt")) {
      if (!req.messages.empty()) return ArgError("prompt: give either `prompt` or `messages`, not both");
      req.messages.push_back({"user", args["prompt"].get<std::string>()});
    }
    if (req.messages.empty()) return ArgError("prompt: one of `prompt` or `messages` is required");
    if (args.contains("system")) req.system = args["system"].get<std::string>();
    if (args.contains("max_tokens")) req.max_tokens = args["max_tokens"].get<int>();
    if (args.contains("temperature")) req.temperature = args["temperature"].get<double>();

    ProviderEntry* first = app.Default();
    if (args.contains("provider")) {
      first = app.Find(args["provider"].get<std::string>());
      if (!first) return UnknownProviderResult(app, args["provider"].get<std::string>());
    }
    const std::string model = args.contains("model") ? args["model"].get<std::string>() : "";

    // A call's attempts run one after another (keypool::RunCall), so this state needs
    // no lock. Progress counts answer characters and never decreases:
    // a restart on another key continues from the highest value reached.
    size_t highest = 0;
    size_t base = 0;

    std::vector<keypool::TypedStep<providers::Completion>> chain;
    for (ProviderEntry* e : app.Chain(first)) {
      providers::CompletionRequest r = req;
      // The first provider takes the requested model; a fallback uses its own default
      // (its config's `model`, else its type's default: the adapter resolves it).
      r.model = (e == first) ? model : "";
      chain.push_back({e->pool.get(), [e, r, &ctx, &highest, &base](const keypool::KeyLease& key, int64_t deadline_ms) {
                         base = highest;
                         providers::AttemptContext actx;
                         actx.deadline_ms = deadline_ms;
                         actx.cancel = &ctx.cancel;
                         actx.on_text = [&, label = key.label](size_t chars) {
                           highest = std::max(highest, base + chars);
                           ctx.progress(static_cast<double>(highest), std::nullopt,
                                        label + ": " + std::to_string(chars) + " chars");
                         };
                         keypool::Attempt<providers::Completion> a;
                         a.outcome = e->adapter->Complete(key, r, actx, &a.value);
                         a.outcome.tokens = a.value.input_tokens + a.value.output_tokens;  // limits.tpm
                         return a;
                       }});
    }

    keypool::CallOptions options = CallOptionsFor(ctx, app.clock());
    options.on_event = [&](const keypool::FailoverEvent& ev) {
      ctx.progress(static_cast<double>(highest), std::nullopt, ev.text);
      ctx.log("info", Json{{"event", "failover"}, {"provider", ev.provider}, {"message", ev.text}});
    };
    int64_t started = app.clock().NowMs();
    keypool::TypedResult<providers::Completion> typed = keypool::RunCall(chain, options, app.clock());
    const keypool::CallResult& result = typed.call;
    spdlog::debug("complete: provider={} key={} outcome={} attempts={} in {} ms", result.provider,
                  result.key ? result.key->Display() : "-", keypool::OutcomeName(result.outcome),
                  result.attempts.size(), app.clock().NowMs() - started);

    ToolResult r;
    if (result.outcome == keypool::Outcome::kOk && result.key && typed.value) {
      const providers::Completion& answer = *typed.value;
      r.text = answer.text;
      r.structured = {{"text", answer.text},
                      {"provider", result.provider},
                      {"model", answer.model},
                      {"key", result.key->Display()},
                      {"finish_reason", answer.finish_reason},
                      {"usage", {{"input_tokens", answer.input_tokens}, {"output_tokens", answer.output_tokens}}},
                      {"attempts", AttemptsToJson(result.attempts)}};
      return r;
    }
    r.is_error = true;
    r.text = app.scrubber().Scrub(result.message);
    Json keys = Json::array();
    for (const auto& snap : result.pools) {
      ProviderEntry* e = app.Find(snap.provider);
      keys.push_back(e ? PoolToJson(ViewOf(*e, snap)) : PoolToJson({"", snap, "", ""}));
    }
    r.structured = {{"error", {{"class", std::string(keypool::OutcomeName(result.outcome))}, {"message", r.text}}},
                    {"attempts", AttemptsToJson(result.attempts)},
                    {"keys", keys}};
    return r;
  };
  return t;
}

}  // namespace kpm::server
