#pragma once
/// ToolRegistry: the tools the server offers, in registration order. Filled once at
/// startup (Add is not thread-safe); afterwards read-only and safe to share between
/// the server's threads.

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "mcp/tool.h"

namespace kpm::mcp {

class ToolRegistry {
 public:
  /// Registers `tool`. Fails fast (kInvalidArgument, message naming the tool) on an
  /// empty or malformed name (MCP: 1-128 of A-Z a-z 0-9 _ - .), a duplicate name, a
  /// missing handler, an inputSchema whose root is not {"type":"object"}, or an
  /// outputSchema that is neither null nor an object schema.
  Status Add(Tool tool);

  /// The tool called `name`, or nullptr. The pointer stays valid until the next Add.
  const Tool* Find(std::string_view name) const;

  /// All tools in registration order.
  const std::vector<Tool>& tools() const { return tools_; }
  std::size_t size() const { return tools_.size(); }

 private:
  std::vector<Tool> tools_;
  std::unordered_map<std::string, std::size_t> index_;  // name -> position in tools_
};

}  // namespace kpm::mcp
