// libFuzzer target: common/redact.h Scrubber (and Fingerprint). Property: a registered
// key never survives Scrub() of text that contains it, whole or as a 12-character
// window, in any ASCII letter case (SPEC §4).
// The input gives 1..3 keys, a surrounding text, and how the key (or, when `partial`,
// a piece of it of 12+ characters) is written into the text: raw, URL-encoded (%XX,
// either case, '+' for space), JSON-escaped (\uXXXX, \/ \\ \"), a per-character mix of
// those, or inside base64 (Basic auth) at any byte alignment, standard or URL alphabet;
// raw and escaped forms also in upper, lower or mixed case. Checks:
//   - no 12-character window of a key of 12+ characters is in the output, in any case,
//     neither raw nor in the output read the way a decoder would (escapes decoded left
//     to right); a window is longer than "[redacted]", so none may touch a marker;
//   - no registered key is in the output in any case, not even across or next to a
//     "[redacted]" marker (unless the key is part of the marker itself);
//   - a whole key written in an encoding does not survive in that encoding; base64:
//     no run of the key-only core that Scrubber documents it removes (also of a piece);
//   - Scrub() of text without any registered key is the identity (for keys of >= 8
//     characters: shorter ones may redact innocent words, redact.h says so);
//   - ForDisplay(text, max) is TruncateUtf8(Scrub(text), max): scrubbed first, then cut;
//   - Scrub() is deterministic and never throws;
//   - Fingerprint() shows at most the last 4 characters plus a vendor prefix, never
//     the key (for keys of >= 16 characters), and is stable.
// Keys come in two flavours: realistic (sk-/sk-proj-/AIza-like: [A-Za-z0-9_-]) and
// arbitrary printable ASCII (the config only accepts visible ASCII keys, 0x21..0x7e).
// The input layout changed when windows and case were added (fields after `align`), so
// the older reproducers in fuzz/crashes/fuzz_scrubber/ now run as plain regression inputs;
// the unit tests in tests/unit/common/redact_test.cc keep their scenarios.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "common/redact.h"
#include "common/strings.h"

#include "fuzz/fuzz_check.h"

namespace {

using kpm::fuzz::Escaped;
using kpm::fuzz::Fail;
using kpm::fuzz::g_detail;
using kpm::fuzz::g_input;




constexpr size_t kWindow = 12;

/// `text` read as a decoder reading left to right would: %XX, \uXXXX below 0x80 and
/// \/ \\ \" are one character each; anything else is itself. Written apart from
/// redact.cc on purpose.
std::string Decoded(std::string_view text) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 3;
    } else if (text[i] == '\\' && i + 1 < text.size() &&
               (text[i + 1] == '/' || text[i + 1] == '\\' || text[i + 1] == '"')) {
      out += text[i + 1];
      i += 2;
    } else if (text[i] == '\\' && i + 5 < text.size() && text[i + 1] == 'u' && hex(text[i + 2]) >= 0 &&
               hex(text[i + 3]) >= 0 && hex(text[i + 4]) >= 0 && hex(text[i + 5]) >= 0 &&
               hex(text[i + 2]) * 16 + hex(text[i + 3]) == 0 && hex(text[i + 4]) < 8) {
      out += static_cast<char>(hex(text[i + 4]) * 16 + hex(text[i + 5]));
      i += 6;
    } else {
      out += text[i++];
    }
  }
  return out;
}

/// The first 12-character window of `key` that `text` holds in any ASCII case, or "".
std::string WindowIn(std::string_view text, const std::string& key) {
  if (key.size() < kWindow) return "";
  const std::string lower_text = kpm::AsciiLower(text);
  const std::string lower_key = kpm::AsciiLower(key);
  for (size_t i = 0; i + kWindow <= lower_key.size(); ++i) {
    if (lower_text.find(lower_key.substr(i, kWindow)) != std::string::npos) return key.substr(i, kWindow);
  }
  return "";
}

bool ContainsIgnoreCase(std::string_view hay, std::string_view needle) {
  return kpm::AsciiLower(hay).find(kpm::AsciiLower(needle)) != std::string::npos;
}

/// `s` in the case `how` says: as is, upper, lower, or letters flipped by the bits of `bits`.
std::string InCase(std::string s, int how, uint64_t bits) {
  for (size_t i = 0; i < s.size(); ++i) {
    char& c = s[i];
    const bool lower = c >= 'a' && c <= 'z';
    const bool upper = c >= 'A' && c <= 'Z';
    const bool flip = how == 3 && ((bits >> (i % 64)) & 1) != 0;
    if ((how == 1 || flip) && lower) {
      c = static_cast<char>(c - 'a' + 'A');
    } else if ((how == 2 || flip) && upper) {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return s;
}

constexpr char kHex[] = "0123456789ABCDEF";
constexpr char kHexLower[] = "0123456789abcdef";
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64(std::string_view bytes) {
  std::string out;
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                 static_cast<unsigned char>(bytes[i + 2]);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (size_t rest = bytes.size() - i) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += rest == 2 ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// One character of the key, written as the encoding `how` says.
void Encode(char c, int how, std::string* out) {
  const unsigned char u = static_cast<unsigned char>(c);
  switch (how) {
    case 0:  // raw
      *out += c;
      break;
    case 1:  // %XX upper
      *out += '%';
      *out += kHex[u >> 4];
      *out += kHex[u & 15];
      break;
    case 2:  // %xx lower
      *out += '%';
      *out += kHexLower[u >> 4];
      *out += kHexLower[u & 15];
      break;
    case 3:  // \u00XX (ASCII only, as JSON writers do for controls)
      *out += "\\u00";
      *out += kHexLower[u >> 4];
      *out += kHexLower[u & 15];
      break;
    case 4:  // the short JSON escapes where they exist, else raw
      if (c == '/' || c == '\\' || c == '"') *out += '\\';
      *out += c;
      break;
    case 5:  // form encoding: space as '+'
      *out += c == ' ' ? '+' : c;
      break;
  }
}

std::string Key(FuzzedDataProvider& fdp, bool realistic) {
  static constexpr char kRealistic[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  std::string key;
  if (realistic) {
    static const char* kPrefixes[] = {"sk-", "sk-proj-", "sk-or-v1-", "sk-ant-api03-", "AIza", "", "gsk_", "xai-"};
    key = kPrefixes[fdp.ConsumeIntegralInRange<size_t>(0, std::size(kPrefixes) - 1)];
    const size_t n = fdp.ConsumeIntegralInRange<size_t>(1, 48);
    for (size_t i = 0; i < n; ++i) key += kRealistic[fdp.ConsumeIntegralInRange<size_t>(0, sizeof kRealistic - 2)];
  } else {
    const size_t n = fdp.ConsumeIntegralInRange<size_t>(1, 40);
    for (size_t i = 0; i < n; ++i) key += static_cast<char>(fdp.ConsumeIntegralInRange<int>(0x21, 0x7e));
  }
  return key;
}

void Run(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const bool realistic = fdp.ConsumeBool();
  const size_t n_keys = fdp.ConsumeIntegralInRange<size_t>(1, 3);
  std::vector<std::string> keys;
  for (size_t i = 0; i < n_keys; ++i) keys.push_back(Key(fdp, realistic));
  const size_t target = fdp.ConsumeIntegralInRange<size_t>(0, n_keys - 1);
  const int mode = fdp.ConsumeIntegralInRange<int>(0, 8);
  const uint64_t mix = fdp.ConsumeIntegral<uint64_t>();
  const size_t align = fdp.ConsumeIntegralInRange<size_t>(0, 2);
  const int case_how = fdp.ConsumeIntegralInRange<int>(0, 3);
  const bool partial = fdp.ConsumeBool();
  const size_t cut_at = fdp.ConsumeIntegral<uint8_t>();
  const size_t cut_len = fdp.ConsumeIntegral<uint8_t>();
  const size_t display_max = fdp.ConsumeIntegralInRange<size_t>(0, 400);
  const std::string before = fdp.ConsumeRandomLengthString(64);
  const std::string after = fdp.ConsumeRemainingBytesAsString();

  kpm::Scrubber scrubber;
  for (const auto& k : keys) scrubber.Add(k);
  CHECK(!scrubber.empty());
  const std::string& key = keys[target];

  // What goes into the text: the key, or a piece of 12+ characters of it; in the case
  // case_how says except inside base64 (whose cores the scrubber takes from the key
  // as configured).
  std::string embed = key;
  const bool piece = partial && key.size() > kWindow;
  if (piece) {
    const size_t at = cut_at % (key.size() - kWindow + 1);
    const size_t len = kWindow + cut_len % (key.size() - at - kWindow + 1);
    embed = key.substr(at, len);
  }
  if (mode <= 6) embed = InCase(embed, case_how, mix * 0x9E3779B97F4A7C15ULL);

  // The piece in the text, written as `mode` says.
  std::string encoded;
  std::string plain;  // for base64: the bytes encoded
  if (mode <= 5) {
    for (char c : embed) Encode(c, mode, &encoded);
  } else if (mode == 6) {  // a per-character mix of the encodings
    for (size_t i = 0; i < embed.size(); ++i) {
      Encode(embed[i], static_cast<int>((mix >> ((i * 3) % 60)) % 6), &encoded);
    }
  } else {  // base64 of "<align bytes>user:KEY" (Basic auth), standard or URL alphabet
    plain = std::string(align, 'u') + ":" + embed;
    encoded = Base64(plain);
    if (mode == 8) {
      for (char& c : encoded) c = c == '+' ? '-' : c == '/' ? '_' : c;
    }
  }
  const std::string text = before + encoded + after;
  g_detail = "keys:";
  for (const auto& k : keys) g_detail += " [" + Escaped(k) + "]";
  g_detail += "\nmode " + std::to_string(mode) + (piece ? " piece [" + Escaped(embed) + "]" : "") +
              " case " + std::to_string(case_how) + "\ntext: " + Escaped(text);

  const std::string out = scrubber.Scrub(text);
  g_detail += "\nout:  " + Escaped(out);
  CHECK(out == scrubber.Scrub(text));
  // The text of the output that came from the input: each "[redacted]" marker masked
  // with a byte no key can hold (keys are visible ASCII), so a key such as "act" is not
  // "found" inside the marker Scrub() wrote.
  std::string masked = out;
  for (size_t p = 0; (p = masked.find("[redacted]", p)) != std::string::npos;) {
    masked.replace(p, 10, "\x01");
    p += 1;
  }
  // Windows: none in the output, raw or decoded (a window is longer than the marker, so
  // no marker can hold one).
  const std::string decoded_out = Decoded(out);
  for (const auto& k : keys) {
    if (std::string w = WindowIn(out, k); !w.empty()) Fail("a 12-character window survived Scrub(): [" + Escaped(w) + "]");
    if (std::string w = WindowIn(decoded_out, k); !w.empty()) {
      Fail("a 12-character window survived Scrub(), encoded: [" + Escaped(w) + "]");
    }
  }
  for (const auto& k : keys) {
    if (ContainsIgnoreCase(masked, k)) Fail("a registered key survived Scrub(): [" + Escaped(k) + "]");
  }
  if (mode <= 6 && !piece && masked.find(encoded) != std::string::npos) Fail("the encoded key survived Scrub()");
  // Strict: no key may appear in the output at all, not even re-formed from the tail of
  // a "[redacted]" marker and the text after it (key "ted]abcdefgh" in
  // "ted]abcdefghabcdefgh" -> "[redacted]abcdefgh"), or across two markers. Only a key
  // that is itself part of the marker ("dact", "redacted") may be read there.
  for (const auto& k : keys) {
    if (!ContainsIgnoreCase("[redacted]", k) && ContainsIgnoreCase(out, k)) {
      Fail("a registered key re-formed across a [redacted] marker: [" + Escaped(k) + "]");
    }
  }
  if (mode >= 7) {
    // Scrubber documents that up to two encoded characters of the first and last key
    // bytes may stay; the middle of the encoding must go. Check the encoding of the
    // piece's interior 3-byte groups that depend on its bytes only.
    const size_t key_start = align + 1;                      // in `plain`
    const size_t first_group = (key_start + 2) / 3;          // first group made only of key bytes
    const size_t end = key_start + embed.size();             // one past the piece
    const size_t last_group = end / 3;                       // groups [first, last) are key-only
    if (last_group > first_group && (last_group - first_group) * 4 >= 12) {
      const std::string core = encoded.substr(first_group * 4, (last_group - first_group) * 4);
      if (out.find(core) != std::string::npos) Fail("the base64 core of a key survived Scrub(): " + core);
    }
  }

  // Text without any registered key is left alone (keys >= 8 chars: shorter ones may
  // collide with innocent words, and encodings of long keys cannot appear by chance...
  // unless the text happens to hold one: then skip).
  bool all_long = true;
  for (const auto& k : keys) all_long = all_long && k.size() >= 8;
  if (all_long) {
    const std::string plain_text = before + after;
    const std::string scrubbed = scrubber.Scrub(plain_text);
    if (scrubbed != plain_text && scrubbed.find("[redacted]") == std::string::npos) {
      Fail("Scrub() changed text without a key and without redacting anything");
    }
  }

  // Display text: the whole text scrubbed, then cut (keys are ASCII, so the "…" added
  // cannot complete one).
  const std::string shown = scrubber.ForDisplay(text, display_max);
  CHECK(shown == kpm::TruncateUtf8(out, display_max));
  CHECK(shown.size() <= display_max + 3);

  // Fingerprints.
  for (const auto& k : keys) {
    const std::string fp = kpm::Fingerprint(k);
    CHECK(fp == kpm::Fingerprint(k));
    CHECK(fp.find("\xE2\x80\xA6") != std::string::npos);  // "…"
    if (k.size() >= 16) {
      CHECK(fp.find(k) == std::string::npos);
      // prefix (<= 10) + "…" (3 bytes) + last 4
      CHECK(fp.size() <= 10 + 3 + 4);
      CHECK(fp.substr(fp.size() - 4) == k.substr(k.size() - 4));
      // At least 8 characters stay hidden.
      const size_t shown = fp.size() - 3;
      CHECK(shown + 8 <= k.size());
      CHECK(k.rfind(fp.substr(0, fp.size() - 7), 0) == 0);  // the prefix is the key's own
    } else {
      CHECK(fp.size() <= 3 + 2);
    }
  }
  CHECK(kpm::Fingerprint("") == "(no key)");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return kpm::fuzz::RunOne(data, size, Run);
}
