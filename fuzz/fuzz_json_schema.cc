// libFuzzer target: mcp/json_schema.h ValidateJson(), which checks the `arguments`
// of every tools/call against the tool's inputSchema (SPEC §5).
//
// Mode 0 (most inputs): the input is the arguments JSON text; the schema is the
// `complete` tool's input schema (server/complete_schema.cc, the one the tool uses).
// Checks:
//   - ValidateJson never throws; a failure names a path and says what is wrong;
//   - soundness: arguments that pass are what the `complete` handler can read without
//     surprises: every field has the schema's type, messages[] are {role, content}
//     with a known role, temperature is in [0, 2], and max_tokens is a whole number
//     >= 1 that fits the handler's `int` (it does `get<int>()`);
//   - completeness (for a few generated shapes): a well-formed argument object passes.
// Mode 1 (first byte 0x01): input = schema JSON + '\n' + instance JSON, both from the
// fuzzer; only robustness is checked (no throw, no crash), nesting kept shallow because
// schemas are ours, not outside input.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mcp/json_schema.h"
#include "server/complete_schema.h"

#include "fuzz/fuzz_check.h"

namespace {

using kpm::fuzz::Fail;
using kpm::fuzz::g_input;

using Json = nlohmann::json;




const Json& Schema() {
  static const Json schema = kpm::server::CompleteInputSchema();
  return schema;
}

// True when `v` is a whole number the handler's `get<int>()` turns into the same value.
bool FitsInt(const Json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int>::max());
  if (v.is_number_integer()) {
    const int64_t n = v.get<int64_t>();
    return n >= std::numeric_limits<int>::min() && n <= std::numeric_limits<int>::max();
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    return std::isfinite(d) && d >= std::numeric_limits<int>::min() && d <= std::numeric_limits<int>::max() &&
           std::floor(d) == d;
  }
  return false;
}

// What the `complete` handler relies on once validation has passed.
void CheckAccepted(const Json& args) {
  CHECK(args.is_object());
  static const char* kKnown[] = {"prompt", "messages", "system", "provider", "model", "max_tokens", "temperature"};
  for (const auto& [key, value] : args.items()) {
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    if (!known) Fail("accepted an unknown field: " + key);
    (void)value;
  }
  for (const char* k : {"prompt", "system", "provider", "model"}) {
    if (args.contains(k)) CHECK(args[k].is_string());
  }
  if (args.contains("messages")) {
    const Json& ms = args["messages"];
    CHECK(ms.is_array());
    CHECK(!ms.empty());
    for (const Json& m : ms) {
      CHECK(m.is_object());
      CHECK(m.size() == 2);
      CHECK(m.contains("role") && m["role"].is_string());
      const std::string& role = m["role"].get_ref<const std::string&>();
      CHECK(role == "system" || role == "user" || role == "assistant");
      CHECK(m.contains("content") && m["content"].is_string());
    }
  }
  if (args.contains("temperature")) {
    const Json& t = args["temperature"];
    CHECK(t.is_number());
    const double d = t.get<double>();
    CHECK(d >= 0 && d <= 2);
  }
  if (args.contains("max_tokens")) {
    const Json& t = args["max_tokens"];
    CHECK(t.is_number());
    // The handler does args["max_tokens"].get<int>(): a value that passes the schema
    // but does not fit an int is UB for floats (float-cast-overflow) and a silent
    // wrap (possibly to <= 0) for integers.
    if (!FitsInt(t)) Fail("schema accepted max_tokens that the handler's get<int>() cannot hold: " + t.dump());
    CHECK(t.get<int>() >= 1);
  }
}

void CheckRejected(const kpm::Status& s) {
  const std::string& msg = s.error().message;
  CHECK(s.error().kind == kpm::ErrorKind::kInvalidArgument);
  CHECK(!msg.empty());
  CHECK(msg.find(": ") != std::string::npos);  // "path: what is wrong"
  CHECK(msg.find(": ") > 0);
}

// A few well-formed argument objects built from the input bytes: must pass.
void CheckWellFormed(std::string_view bytes) {
  static const char* kRoles[] = {"system", "user", "assistant"};
  Json args = Json::object();
  std::string text(bytes.substr(0, 16));
  // Keep the text valid UTF-8: nlohmann would reject the dump otherwise (not our concern).
  for (char& c : text) c = static_cast<char>(0x20 + (static_cast<unsigned char>(c) % 95));
  if (!bytes.empty() && (bytes[0] & 1)) {
    args["prompt"] = text;
  } else {
    Json ms = Json::array();
    const size_t n = 1 + (bytes.empty() ? 0 : static_cast<unsigned char>(bytes[0]) % 4);
    for (size_t i = 0; i < n; ++i) {
      const unsigned char b = i < bytes.size() ? static_cast<unsigned char>(bytes[i]) : 0;
      ms.push_back({{"role", kRoles[b % 3]}, {"content", text}});
    }
    args["messages"] = ms;
  }
  if (bytes.size() > 1) {
    const unsigned char b = static_cast<unsigned char>(bytes[1]);
    if (b & 1) args["max_tokens"] = 1 + b;
    if (b & 2) args["temperature"] = (b % 21) / 10.0;
    if (b & 4) args["model"] = text;
    if (b & 8) args["system"] = text;
    if (b & 16) args["provider"] = text;
  }
  const kpm::Status s = kpm::mcp::ValidateJson(Schema(), args);
  if (!s) Fail("a well-formed argument object was rejected: " + s.error().message + " for " + args.dump());
}

int Depth(const Json& j, int limit) {
  if (limit <= 0) return 0;
  int d = 0;
  if (j.is_structured()) {
    for (const auto& c : j) d = std::max(d, Depth(c, limit - 1));
  }
  return d + 1;
}

void RunMode0(std::string_view text) {
  const Json args = Json::parse(text.begin(), text.end(), nullptr, false);
  if (!args.is_discarded()) {
    const kpm::Status s = kpm::mcp::ValidateJson(Schema(), args);
    if (s) {
      CheckAccepted(args);
    } else {
      CheckRejected(s);
    }
  }
  CheckWellFormed(text);
}

void RunMode1(std::string_view text) {
  const size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return;
  const std::string_view schema_text = text.substr(0, nl);
  const std::string_view instance_text = text.substr(nl + 1);
  const Json schema = Json::parse(schema_text.begin(), schema_text.end(), nullptr, false);
  const Json instance = Json::parse(instance_text.begin(), instance_text.end(), nullptr, false);
  if (schema.is_discarded() || instance.is_discarded()) return;
  if (Depth(schema, 40) >= 40) return;  // our schemas are shallow; deep ones only test the stack
  const kpm::Status s = kpm::mcp::ValidateJson(schema, instance);
  if (!s) CheckRejected(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return kpm::fuzz::RunOne(data, size, [](const uint8_t* d, size_t n) {
    if (n > 0 && d[0] == 0x01) {
      RunMode1(g_input.substr(1));
    } else {
      RunMode0(g_input);
    }
  });
}
