#include "mcp/tool_registry.h"

#include <utility>

namespace kpm::mcp {
namespace {

bool IsValidToolName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool IsObjectSchema(const Json& schema) {
  if (!schema.is_object()) return false;
  const auto t = schema.find("type");
  return t != schema.end() && *t == "object";
}

Error Invalid(const std::string& name, std::string_view what) {
  return MakeError(ErrorKind::kInvalidArgument, "tool \"" + name + "\": " + std::string(what));
}

}  // namespace

Status ToolRegistry::Add(Tool tool) {
  if (!IsValidToolName(tool.name)) {
    return Invalid(tool.name, "name must be 1-128 characters of A-Z a-z 0-9 _ - .");
  }
  if (index_.count(tool.name) != 0) return Invalid(tool.name, "registered twice");
  if (!tool.handler) return Invalid(tool.name, "has no handler");
  if (!IsObjectSchema(tool.input_schema)) {
    return Invalid(tool.name, "inputSchema root must be {\"type\":\"object\"}");
  }
  if (!tool.output_schema.is_null() && !IsObjectSchema(tool.output_schema)) {
    return Invalid(tool.name, "outputSchema root must be {\"type\":\"object\"}");
  }
  index_.emplace(tool.name, tools_.size());
  tools_.push_back(std::move(tool));
  return Ok{};
}

const Tool* ToolRegistry::Find(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tools_[it->second];
}

}  // namespace kpm::mcp
