#pragma once
/// The `complete` tool's inputSchema, on its own so the tool (server/tool_complete.cc)
/// and the schema fuzzer (fuzz/fuzz_json_schema.cc) check the same contract.

#include <nlohmann/json.hpp>

namespace kpm::server {

nlohmann::json CompleteInputSchema();

}  // namespace kpm::server
