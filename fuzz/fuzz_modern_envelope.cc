// libFuzzer target: protocol/modern.h ClassifyRequest(), which reads the per-request
// `_meta` envelope of MCP 2026-07-28 from whatever params a client sends. The input is
// one line, decoded as the server decodes it. Checks, besides memory safety and UB:
//   - nothing throws (STYLE.md §3);
//   - a kModern request names a revision we serve; a kRejected one carries -32602 or
//     -32022, and -32022's data lists every supported version and echoes the request;
//   - the error reply and a ModernResult encode to one line of JSON (a version cut in
//     the middle of a UTF-8 sequence for the message must not break the encoder).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "protocol/jsonrpc.h"
#include "protocol/modern.h"

namespace {

namespace rpc = kpm::protocol;
using rpc::Json;

[[noreturn]] void Fail(const char* what, std::string_view line) {
  std::fprintf(stderr, "fuzz_modern_envelope: %s\n  input: %.*s\n", what, static_cast<int>(line.size()),
               line.data());
  std::abort();
}

#define CHECK(cond)                                  \
  do {                                               \
    if (!(cond)) Fail("check failed: " #cond, line); \
  } while (0)

void CheckOneLine(const std::string& out, std::string_view line) {
  CHECK(out.find('\n') == std::string::npos);
  CHECK(!Json::parse(out, nullptr, false).is_discarded());
}

void Check(std::string_view line) {
  const rpc::Message m = rpc::Decode(line);
  if (m.kind != rpc::Message::Kind::kRequest) return;
  const rpc::RequestEra era = rpc::ClassifyRequest(m.params);
  switch (era.kind) {
    case rpc::RequestEra::Kind::kLegacy:
      break;
    case rpc::RequestEra::Kind::kModern: {
      bool served = false;
      for (std::string_view v : rpc::kModernProtocolVersions) served |= era.envelope.protocol_version == v;
      CHECK(served);
      Json result = rpc::ModernResult(Json{{"tools", Json::array()}}, "keypool-mcp", "0.0.0");
      CHECK(result.value("resultType", "") == "complete");
      CheckOneLine(rpc::EncodeResult(m.id, result), line);
      break;
    }
    case rpc::RequestEra::Kind::kRejected: {
      CHECK(era.error.code == rpc::kInvalidParams || era.error.code == rpc::kUnsupportedProtocolVersion);
      CHECK(!era.error.message.empty());
      if (era.error.code == rpc::kUnsupportedProtocolVersion) {
        CHECK(era.error.data.is_object());
        CHECK(era.error.data.contains("requested"));
        CHECK(era.error.data["supported"] == Json(rpc::SupportedProtocolVersions()));
      }
      CheckOneLine(rpc::EncodeError(m.id, era.error), line);
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  try {
    Check(line);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exception escaped: %s\n", e.what());
    Fail("exception escaped", line);
  } catch (...) {
    Fail("non-std exception escaped", line);
  }
  return 0;
}
