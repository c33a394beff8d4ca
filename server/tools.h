#pragma once
/// The four model tools of SPEC §5, each a thin view over the App serving when a call
/// starts (server/live_app.h).

#include <optional>
#include <string>
#include <vector>

#include "keypool/failover.h"
#include "mcp/tool.h"
#include "server/app.h"
#include "server/live_app.h"
#include "server/pool_view.h"

namespace kpm::server {

using mcp::Json;
using mcp::Tool;
using mcp::ToolContext;
using mcp::ToolResult;

Tool MakeCompleteTool(LiveApp& live);
Tool MakeKeyStatusTool(LiveApp& live);
Tool MakeCheckKeysTool(LiveApp& live);
Tool MakeListModelsTool(LiveApp& live);

// Shared by the tools.
std::vector<PoolView> Views(const std::vector<ProviderEntry*>& entries);
/// The view of one provider's snapshot: type, base_url and the model a call gets by default.
PoolView ViewOf(const ProviderEntry& entry, keypool::PoolSnapshot snapshot);
Json ViewsToJson(const std::vector<PoolView>& views);
ToolResult UnknownProviderResult(App& app, const std::string& name);
/// The call's failover options: its token, and its arrival (ctx.arrived) in `clock`'s
/// time, from which its deadline counts (queue time included).
keypool::CallOptions CallOptionsFor(const ToolContext& ctx, const keypool::Clock& clock);

}  // namespace kpm::server
