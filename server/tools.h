#pragma once
/// The four model tools of SPEC §5, each a thin view over App.

#include <optional>
#include <string>
#include <vector>

#include "keypool/failover.h"
#include "mcp/tool.h"
#include "server/app.h"
#include "server/pool_view.h"

namespace kpm::server {

using mcp::Json;
using mcp::Tool;
using mcp::ToolContext;
using mcp::ToolResult;

Tool MakeCompleteTool(App& app);
Tool MakeKeyStatusTool(App& app);
Tool MakeCheckKeysTool(App& app);
Tool MakeListModelsTool(App& app);

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
