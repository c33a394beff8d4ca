#pragma once
/// The error answers of the mock upstream, one table per API (PROVIDERS.md §1-4): the
/// status, body and headers each scripted error step ("429", "insufficient_quota",
/// "context_length", "echo_key", "NNN") gets in a given flavor. Pure, like mock_reply.

#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tests/support/mock_reply.h"
#include "tests/support/mock_step.h"

namespace kpm::testing {

/// One error answer; `headers` already holds Retry-After / retry-after-ms when the
/// step asked for them.
struct MockError {
  int status = 500;
  nlohmann::ordered_json body;
  std::map<std::string, std::string> headers;
};

/// The flavor's error for `name` (a step's `error`, or "echo_key"), shaped by the
/// step's retry options. `name` must be one ParseMockStep admits.
MockError BuildMockError(const MockCall& call, const std::string& name, const MockStep& step);

/// "2", "0.5": seconds as Retry-After and Go-style durations ("30" + "s") print them.
std::string MockSeconds(double seconds);
/// What an upstream shows of a key in its own texts ("sk-...9f3a"): never the whole key.
std::string MockMaskedKey(std::string_view key);
/// The request's model, else a plausible one for the flavor.
std::string MockModelOr(const MockCall& call, std::string_view fallback);

}  // namespace kpm::testing
