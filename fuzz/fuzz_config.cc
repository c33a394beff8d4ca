// libFuzzer target: server/config.h ParseConfigText(), the loader of the user's config
// file (SPEC §2), on YAML and JSON text. The first input byte picks the display path
// (config.yaml / config.json / a name without extension, which makes the loader sniff
// the content); the rest is the file text. The environment is a fake:
//   $K*  -> a canary key "sk-envcanary-<NAME>-0123456789abcdef" (must never be echoed)
//   $E*  -> ""            (empty: the key must be disabled)
//   $W*  -> " \t\n"       (whitespace only)
//   $S*  -> "has space"   (not header safe)
//   other names -> unset
// Checks: no exception escapes; an error names the file first; a loaded config keeps
// the promises of config.h (providers non-empty, default and fallbacks name providers,
// keys either usable or disabled with a reason, header-safe secrets, unique labels);
// and no canary (key material from the environment) shows up in any error or warning.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "server/config.h"
#include "server/key_sources.h"

#include "fuzz/fuzz_check.h"

namespace kpm_fuzz {

using ::kpm::fuzz::Fail;
using ::kpm::fuzz::g_input;




constexpr std::string_view kCanaryTag = "envcanary";

std::vector<std::string> g_canaries;  // the key values FakeEnv handed out for this input

std::optional<std::string> FakeEnv(const std::string& name) {
  if (name.empty()) return std::nullopt;
  switch (name[0]) {
    case 'K':
      g_canaries.push_back("sk-" + std::string(kCanaryTag) + "-" + name + "-0123456789abcdef");
      return g_canaries.back();
    case 'E': return std::string();
    case 'W': return std::string(" \t\n");
    case 'S': return std::string("has space");
    default: return std::nullopt;
  }
}

bool HeaderSafe(const std::string& s) {
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// A key value read from the environment must not show up in `text`, unless the config
// text itself spelled it out (then the message may quote the file, not the environment).
void CheckNoCanary(const std::string& text, const char* where) {
  for (const std::string& c : g_canaries) {
    if (text.find(c) != std::string::npos && g_input.find(c) == std::string_view::npos) {
      Fail(std::string("key material in ") + where + ": " + text);
    }
  }
}

void CheckLoaded(const kpm::server::Config& c, const std::string& path) {
  CHECK(c.path == path);
  CHECK(!c.providers.empty());
  std::set<std::string> names;
  for (const auto& p : c.providers) {
    CHECK(!p.name.empty());
    CHECK(names.insert(p.name).second);  // provider names are unique
    CHECK(p.base_url.rfind("http://", 0) == 0 || p.base_url.rfind("https://", 0) == 0);
    CHECK(p.timeout_ms > 0 && p.first_byte_timeout_ms > 0 && p.idle_timeout_ms > 0);
    CHECK(!p.max_tokens || *p.max_tokens >= 1);
    std::set<std::string> labels;
    for (const auto& k : p.keys) {
      CHECK(!k.label.empty());
      CHECK(labels.insert(k.label).second);
      // A key is either usable (secret set, header safe) or disabled with a reason.
      CHECK(k.secret.empty() != k.disabled_reason.empty());
      if (!k.secret.empty()) CHECK(HeaderSafe(k.secret));
      CheckNoCanary(k.disabled_reason, "a disabled reason");
      CheckNoCanary(k.label, "a key label");
    }
    for (const auto& [hname, hvalue] : p.headers) {
      CHECK(!hname.empty());
      CHECK(hvalue.find_first_of("\r\n") == std::string::npos);
    }
  }
  CHECK(names.count(c.default_provider) == 1);
  for (const auto& f : c.fallback) CHECK(names.count(f) == 1);
  for (const auto& p : c.providers) {
    if (!p.fallback) continue;
    for (const auto& f : *p.fallback) {
      CHECK(names.count(f) == 1);
      CHECK(f != p.name);
    }
  }
  for (const auto& w : c.warnings) {
    CHECK(!w.empty());
    CheckNoCanary(w, "a warning");
    // No usable secret (of a useful length) is echoed in a warning either.
    for (const auto& p : c.providers) {
      for (const auto& k : p.keys) {
        if (k.secret.size() >= 12 && w.find(k.secret) != std::string::npos) {
          Fail("key material in a warning: " + w);
        }
      }
    }
  }
}

void Run(std::string_view input) {
  // A generated config may name a keyCommand: no input may start a program.
  static const bool kNoCommands = (kpm::server::SetKeyCommandsEnabled(false), true);
  (void)kNoCommands;
  if (input.empty()) return;
  static const char* kPaths[] = {"config.yaml", "config.json", "keypool-config", "conf.YML"};
  const std::string path = kPaths[static_cast<unsigned char>(input[0]) % 4];
  const std::string_view text = input.substr(1);
  const kpm::Result<kpm::server::Config> r = kpm::server::ParseConfigText(text, path, FakeEnv);
  if (r.has_value()) {
    CheckLoaded(r.value(), path);
  } else {
    const std::string& msg = r.error().message;
    CHECK(!msg.empty());
    if (msg.rfind(path, 0) != 0) Fail("error does not start with the file name: " + msg);
    CheckNoCanary(msg, "an error");
  }
}

}  // namespace kpm_fuzz

using kpm_fuzz::g_input;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kpm_fuzz::g_canaries.clear();
  return kpm::fuzz::RunOne(data, size, [](const uint8_t*, size_t) { kpm_fuzz::Run(g_input); });
}
