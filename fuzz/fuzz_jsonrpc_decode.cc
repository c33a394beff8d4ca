// libFuzzer target: protocol/jsonrpc.h Decode(), the decoder of every line a client
// writes to stdin. Checks, besides memory safety and UB (ASan/UBSan):
//   - Decode never throws (STYLE.md §3: our code does not throw);
//   - the result obeys the header's contract: a kRequest has a string/number id and
//     structured-or-null params; a notification has no id; kInvalid carries one of the
//     -32700/-32600 codes and an id that is null, a string or a number;
//   - the reply it leads to (EncodeResult/EncodeError/EncodeNotification) is one line
//     of valid JSON that decodes back to the same id;
//   - IdKey tells "1" and 1 apart and is stable;
//   - re-encoding a decoded request and decoding it again gives the same message.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "protocol/jsonrpc.h"

namespace {

using kpm::protocol::Json;
using kpm::protocol::Message;
namespace rpc = kpm::protocol;

[[noreturn]] void Fail(const char* what, std::string_view line) {
  std::fprintf(stderr, "fuzz_jsonrpc_decode: %s\n  input: %.*s\n", what, static_cast<int>(line.size()),
               line.data());
  std::abort();
}

#define CHECK(cond)                                    \
  do {                                                 \
    if (!(cond)) Fail("check failed: " #cond, line);   \
  } while (0)

bool IsIdOrNull(const Json& id) { return id.is_null() || id.is_string() || id.is_number(); }

// An encoded reply must be one line of JSON whose id is `id`.
void CheckReplyLine(const std::string& out, const Json& id, std::string_view line) {
  CHECK(out.find('\n') == std::string::npos);
  CHECK(out.find('\r') == std::string::npos);
  Json back = Json::parse(out, nullptr, false);
  CHECK(!back.is_discarded());
  CHECK(back.is_object());
  CHECK(back.value("jsonrpc", "") == "2.0");
  CHECK(back.contains("id"));
  // Floats may print differently after a round trip (e.g. 1e999 -> null); compare ints
  // and strings exactly and floats through IdKey only.
  if (!id.is_number_float()) CHECK(back["id"] == id);
}

void Check(std::string_view line) {
  const Message m = rpc::Decode(line);
  switch (m.kind) {
    case Message::Kind::kRequest: {
      CHECK(m.id.is_string() || m.id.is_number());
      CHECK(m.params.is_null() || m.params.is_object() || m.params.is_array());
      CheckReplyLine(rpc::EncodeResult(m.id, Json::object()), m.id, line);
      CheckReplyLine(rpc::EncodeError(m.id, rpc::RpcError::MethodNotFound(m.method)), m.id, line);
      CheckReplyLine(rpc::EncodeError(m.id, rpc::RpcError::InternalError()), m.id, line);
      // IdKey is a function of the id: the same id twice gives the same key, and a
      // string id never collides with a number id.
      const std::string key = rpc::IdKey(m.id);
      CHECK(key == rpc::IdKey(Json(m.id)));
      if (m.id.is_string()) CHECK(!key.empty() && key.front() == '"');
      if (m.id.is_number()) CHECK(!key.empty() && key.front() != '"');
      // Round trip: the request re-encoded by us decodes to the same request.
      Json again = {{"jsonrpc", "2.0"}, {"id", m.id}, {"method", m.method}};
      if (!m.params.is_null()) again["params"] = m.params;
      if (!m.id.is_number_float()) {
        const Message m2 = rpc::Decode(rpc::Serialize(again));
        CHECK(m2.kind == Message::Kind::kRequest);
        CHECK(m2.method == m.method);
        CHECK(m2.id == m.id);
      }
      break;
    }
    case Message::Kind::kNotification: {
      CHECK(m.id.is_null());
      CHECK(m.params.is_null() || m.params.is_object() || m.params.is_array());
      const std::string out = rpc::EncodeNotification(m.method, m.params);
      CHECK(out.find('\n') == std::string::npos);
      const Message m2 = rpc::Decode(out);
      CHECK(m2.kind == Message::Kind::kNotification);
      CHECK(m2.method == m.method);
      break;
    }
    case Message::Kind::kIgnored:
      CHECK(!m.error.message.empty());
      break;
    case Message::Kind::kInvalid: {
      CHECK(m.error.code == rpc::kParseError || m.error.code == rpc::kInvalidRequest);
      CHECK(!m.error.message.empty());
      CHECK(IsIdOrNull(m.id));
      if (m.error.code == rpc::kParseError) CHECK(m.id.is_null());
      CheckReplyLine(rpc::EncodeError(m.id, m.error), m.id, line);
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
    Fail("exception escaped from the decoder or encoders", line);
  } catch (...) {
    Fail("non-std exception escaped from the decoder or encoders", line);
  }
  return 0;
}
