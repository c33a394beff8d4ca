// libFuzzer target: the four upstream adapters (providers::MakeProvider for openai,
// openrouter, anthropic, gemini) reading whatever an upstream sends. A scripted
// HttpClient answers every request with the fuzz input:
//   (a) Complete() with config.stream: status 200, the input fed to the body callback
//       as an SSE stream in 1..3 pieces;
//   (b) Complete() with stream=false: the input as a whole body, status 200;
//   (c) the same with a 4xx/5xx status (the error path, ClassifyHttpError);
//   (d) CheckKey() and ListModels() on the whole body, 200 and the error status.
// Checks:
//   - no exception escapes: the harness catches nothing, so libFuzzer reports the
//     throw with its stack (our code does not throw);
//   - every outcome is a valid class, never `cancelled` (nothing cancels), never `ok`
//     for a 4xx/5xx status, and a failure carries a message;
//   - a canary key configured for the provider and echoed by the upstream (each "$KEY"
//     in the input becomes the key: raw, upper-cased, lower-cased or JSON-escaped)
//     never reaches the outcome message, the completion text, model or finish reason as
//     a fragment of 8+ characters (any case, also in \u00XX escapes), once scrubbed the
//     way the failover loop scrubs (Scrubber with the pool's keys). A cut through the
//     key before scrubbing breaks this. Inputs that themselves hold 8 characters of the
//     canary are skipped (an upstream can always echo a fragment the scrubber cannot
//     know).
// Input: 5 selector bytes, then the body.
//   [0] % 4: adapter (0 openai, 1 openrouter, 2 anthropic, 3 gemini)
//   [1] % 4: how "$KEY" is written (0 raw, 1 upper case, 2 \u00XX-escaped, 3 lower case)
//   [2] % 14: the error status of (c), from kErrorStatuses
//   [3] % 3 + 1: stream pieces; bit 3 ([3] / 8 % 2): the transfer ends in an idle timeout;
//       bit 4: the body is cut (body_complete false, no error)
//   [4]: where the first piece ends (fraction of the body, /256)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/redact.h"
#include "common/strings.h"
#include "keypool/clock.h"
#include "keypool/key_pool.h"
#include "keypool/outcome.h"
#include "providers/http_client.h"
#include "providers/provider.h"
#include "providers/provider_config.h"

#include "fuzz/fuzz_check.h"

namespace {

using kpm::fuzz::Escaped;
using kpm::fuzz::Fail;
using kpm::fuzz::g_detail;
using kpm::fuzz::g_input;

namespace pv = kpm::providers;
namespace kp = kpm::keypool;

constexpr int kErrorStatuses[] = {400, 401, 402, 403, 404, 408, 413, 422, 429, 500, 502, 503, 504, 529};
constexpr size_t kFragment = 8;  // this many characters of a key count as a leak

struct Adapter {
  pv::ProviderType type;
  const char* name;
  const char* canary;    // shaped like the provider's real keys
  size_t public_prefix;  // the vendor tag every such key starts with: no secret
};
constexpr Adapter kAdapters[] = {
    {pv::ProviderType::kOpenAI, "openai", "sk-proj-CANARYq7Rk2LmX9vB4nT6wZ1pY8sD3fH5jK0cE", 8},
    {pv::ProviderType::kOpenRouter, "openrouter",
     "sk-or-v1-CANARY6e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c", 9},
    {pv::ProviderType::kAnthropic, "anthropic", "sk-ant-api03-CANARYxQ2wE4rT6yU8iO0pA1sD3fG5hJ7kL9zX-AAAA", 13},
    {pv::ProviderType::kGemini, "gemini", "AIzaSyCANARY-Xq7Rk2LmX9vB4nT6wZ1pY8s", 6},
};

// KPM_FUZZ_KNOWN_STRADDLE set: a leak right before the "…" of a cut is not reported, so
// a run can look past that known finding (fuzz/crashes/fuzz_adapters/
// openai-401-key-straddles-300-byte-cut: providers cut before scrubbing). Unset by default.
const bool kSkipKnownStraddle = std::getenv("KPM_FUZZ_KNOWN_STRADDLE") != nullptr;

/// Answers every request with one scripted result, feeding a 2xx body to the callback
/// in the given pieces (as CurlHttpClient does); other statuses, or no callback, get
/// the body whole in HttpResult::body.
class ScriptedHttpClient : public pv::HttpClient {
 public:
  int status = 200;
  std::vector<std::string> pieces;
  pv::TransportError end_error = pv::TransportError::kNone;  // after the pieces
  bool cut = false;                                         // body_complete false, no error

  pv::HttpResult Send(const pv::HttpRequest&, const pv::BodyCallback& on_body) override {
    pv::HttpResult r;
    r.status = status;
    r.headers["content-type"] = "application/json";
    const bool stream = on_body && status >= 200 && status <= 299;
    for (const std::string& piece : pieces) {
      if (!stream) {
        r.body += piece;
      } else if (!on_body(piece)) {
        r.error = pv::TransportError::kAborted;
        return r;
      }
    }
    r.error = end_error;
    if (end_error != pv::TransportError::kNone) r.error_message = "idle timeout after the last piece";
    if (cut && end_error == pv::TransportError::kNone) r.error_message = "connection reset mid-body";
    r.body_complete = end_error == pv::TransportError::kNone && !cut;
    return r;
  }
};

class FixedClock : public kp::Clock {
 public:
  int64_t NowMs() const override { return 1'800'000'000'000; }
  bool SleepFor(int64_t, const kpm::CancelToken*) override { return true; }
};

/// `text` with \u00XX escapes (below 0x80) decoded and ASCII lower-cased: how a reader
/// would see a key fragment in it.
std::string Readable(std::string_view text) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '\\' && i + 5 < text.size() && text[i + 1] == 'u' && hex(text[i + 2]) == 0 &&
        hex(text[i + 3]) == 0 && hex(text[i + 4]) >= 0 && hex(text[i + 4]) < 8 && hex(text[i + 5]) >= 0) {
      out += static_cast<char>(hex(text[i + 4]) * 16 + hex(text[i + 5]));
      i += 6;
    } else {
      out += text[i++];
    }
  }
  return kpm::AsciiLower(out);
}

/// The first kFragment-character piece of `key` holding a secret character (one past
/// the first `public_prefix`) that `text` shows (see Readable), or "". With
/// `skip_at_cut`, a piece that ends just before a "…" (a cut) does not count.
std::string FragmentIn(std::string_view text, const std::string& key, size_t public_prefix, bool skip_at_cut = false) {
  const std::string readable = Readable(text);
  const std::string lower_key = kpm::AsciiLower(key);
  for (size_t i = 0; i + kFragment <= lower_key.size(); ++i) {
    if (i + kFragment <= public_prefix) continue;
    for (size_t at = readable.find(lower_key.substr(i, kFragment)); at != std::string::npos;
         at = readable.find(lower_key.substr(i, kFragment), at + 1)) {
      if (skip_at_cut) {
        const size_t ellipsis = readable.find("\xE2\x80\xA6", at + kFragment);
        // up to 3 more characters of the key and a cut-off \u00XX may come between
        if (ellipsis != std::string::npos && ellipsis <= at + kFragment + 3 + 5) continue;
      }
      return key.substr(i, kFragment);
    }
  }
  return "";
}

/// `body` with each "$KEY" (at most 8) replaced by `key` written as `form` says.
std::string WithKey(std::string_view body, const std::string& key, int form) {
  std::string written;
  for (const char c : key) {
    if (form == 1) {
      written += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    } else if (form == 2) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
      written += buf;
    } else if (form == 3) {
      written += kpm::AsciiLowerChar(c);
    } else {
      written += c;
    }
  }
  std::string out;
  int replaced = 0;
  for (size_t i = 0; i < body.size();) {
    if (replaced < 8 && body.substr(i, 4) == "$KEY") {
      out += written;
      i += 4;
      ++replaced;
    } else {
      out += body[i++];
    }
  }
  return out;
}

void CheckOutcome(const kp::AttemptOutcome& o, int status, const kpm::Scrubber& scrubber, const Adapter& adapter,
                  const char* what) {
  const int cls = static_cast<int>(o.outcome);
  if (cls < static_cast<int>(kp::Outcome::kOk) || cls > static_cast<int>(kp::Outcome::kCancelled)) {
    Fail(std::string(what) + ": outcome out of range: " + std::to_string(cls));
  }
  if (o.outcome == kp::Outcome::kCancelled) Fail(std::string(what) + ": cancelled, but nothing cancels");
  if (status >= 400 && o.outcome == kp::Outcome::kOk) {
    Fail(std::string(what) + ": ok for status " + std::to_string(status));
  }
  if (o.outcome != kp::Outcome::kOk && o.message.empty()) {
    Fail(std::string(what) + ": " + std::string(kp::OutcomeName(o.outcome)) + " without a message");
  }
  const std::string shown = scrubber.Scrub(o.message);
  if (std::string f = FragmentIn(shown, adapter.canary, adapter.public_prefix, kSkipKnownStraddle); !f.empty()) {
    Fail(std::string(what) + ": the key leaked into the outcome message (" + f + "): " + Escaped(shown));
  }
}

void CheckText(std::string_view field, const kpm::Scrubber& scrubber, const Adapter& adapter, const char* what) {
  const std::string shown = scrubber.Scrub(field);
  if (std::string f = FragmentIn(shown, adapter.canary, adapter.public_prefix); !f.empty()) {
    Fail(std::string(what) + ": the key leaked (" + f + "): " + Escaped(shown));
  }
}

void Run(const uint8_t* data, size_t size) {
  if (size < 5) return;
  const Adapter& adapter = kAdapters[data[0] % 4];
  const int form = data[1] % 4;
  const int error_status = kErrorStatuses[data[2] % std::size(kErrorStatuses)];
  const size_t piece_count = data[3] % 3 + 1;
  const bool idle_timeout = (data[3] / 8) % 2 != 0;
  const bool cut = (data[3] / 16) % 2 != 0;
  const size_t first_cut = data[4];
  const std::string_view raw_body(reinterpret_cast<const char*>(data) + 5, size - 5);

  const std::string key = adapter.canary;
  if (!FragmentIn(raw_body, key, adapter.public_prefix).empty()) return;  // the input spells part of the key itself
  const std::string body = WithKey(raw_body, key, form);

  // One split of the body into 1..3 pieces.
  std::vector<std::string> pieces;
  {
    const size_t a = body.size() * first_cut / 256;
    const size_t b = a + (body.size() - a) / 2;
    if (piece_count == 1) {
      pieces = {body};
    } else if (piece_count == 2) {
      pieces = {body.substr(0, a), body.substr(a)};
    } else {
      pieces = {body.substr(0, a), body.substr(a, b - a), body.substr(b)};
    }
  }
  g_detail = std::string("adapter ") + adapter.name + ", key form " + std::to_string(form) + ", error status " +
             std::to_string(error_status) + ", pieces " + std::to_string(piece_count) +
             (idle_timeout ? ", idle timeout" : "") + (cut ? ", cut" : "") + "\nbody: " + Escaped(body);

  kpm::Scrubber scrubber;  // what the failover loop scrubs messages with (the pool's keys)
  scrubber.Add(key);
  kp::KeyLease lease;
  lease.provider = adapter.name;
  lease.secret = key;
  lease.label = std::string(adapter.name) + "#1";
  lease.fingerprint = kpm::Fingerprint(key);

  pv::ProviderConfig config;
  config.name = adapter.name;
  config.type = adapter.type;
  config.base_url = pv::DefaultBaseUrl(adapter.type);
  config.keys = {kp::KeySpec{key, lease.label, "", "", "", "", {}, ""}};
  config.model = "fuzz-model";
  if (adapter.type == pv::ProviderType::kAnthropic) config.max_tokens = 4096;

  pv::CompletionRequest request;
  request.messages = {{"user", "hi"}};
  size_t reported = 0;
  pv::AttemptContext ctx;
  ctx.on_text = [&](size_t chars) { reported = chars; };

  ScriptedHttpClient http;
  http.end_error = idle_timeout ? pv::TransportError::kIdleTimeout : pv::TransportError::kNone;
  http.cut = cut;
  FixedClock clock;

  auto complete = [&](bool stream, int status, std::vector<std::string> answer, const char* what) {
    config.stream = stream;
    http.status = status;
    http.pieces = std::move(answer);
    std::unique_ptr<pv::Provider> provider = pv::MakeProvider(config, http, clock);
    pv::Completion completion;
    reported = 0;
    const kp::AttemptOutcome o = provider->Complete(lease, request, ctx, &completion);
    CheckOutcome(o, status, scrubber, adapter, what);
    CheckText(completion.text, scrubber, adapter, what);
    CheckText(completion.model, scrubber, adapter, what);
    CheckText(completion.finish_reason, scrubber, adapter, what);
    if (o.outcome == kp::Outcome::kOk && reported > completion.text.size()) {
      Fail(std::string(what) + ": on_text reported more text than the completion holds");
    }
  };
  complete(true, 200, pieces, "stream 200");
  complete(false, 200, {body}, "body 200");
  complete(false, error_status, {body}, "body error status");

  for (const int status : {200, error_status}) {
    config.stream = false;
    http.status = status;
    http.pieces = {body};
    std::unique_ptr<pv::Provider> provider = pv::MakeProvider(config, http, clock);
    pv::HealthInfo health;
    CheckOutcome(provider->CheckKey(lease, ctx, &health), status, scrubber, adapter, "CheckKey");
    std::vector<pv::ModelInfo> models;
    const kp::AttemptOutcome o = provider->ListModels(lease, ctx, &models);
    CheckOutcome(o, status, scrubber, adapter, "ListModels");
    for (const pv::ModelInfo& m : models) {
      CheckText(m.id, scrubber, adapter, "ListModels id");
      CheckText(m.name, scrubber, adapter, "ListModels name");
    }
  }
}

}  // namespace

// No try/catch here on purpose (unlike kpm::fuzz::RunOne): an exception escaping an
// adapter terminates the process, and libFuzzer reports it with the throwing stack.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  g_input = std::string_view(reinterpret_cast<const char*>(data), size);
  g_detail.clear();
  Run(data, size);
  return 0;
}
