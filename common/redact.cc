#include "common/redact.h"

#include <algorithm>
#include <cstdint>

namespace kpm {
namespace {

constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026 "…"
constexpr std::string_view kRedacted = "[redacted]";

bool IsLowerAlpha(char c) { return c >= 'a' && c <= 'z'; }
bool IsLowerAlnum(char c) { return IsLowerAlpha(c) || (c >= '0' && c <= '9'); }

/// True when `prefix` (ending in '-') looks like a vendor tag (sk-, sk-proj-,
/// sk-or-v1-, xai-, nvapi-) rather than random key material: a first segment of
/// 2..6 lower-case letters, then segments of at most 5 lower-case letters/digits.
bool LooksLikeVendorPrefix(std::string_view prefix) {
  size_t seg_start = 0;
  bool first = true;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (prefix[i] != '-') continue;
    std::string_view seg = prefix.substr(seg_start, i - seg_start);
    if (first) {
      if (seg.size() < 2 || seg.size() > 6) return false;
      if (!std::all_of(seg.begin(), seg.end(), IsLowerAlpha)) return false;
    } else {
      if (seg.empty() || seg.size() > 5) return false;
      if (!std::all_of(seg.begin(), seg.end(), IsLowerAlnum)) return false;
    }
    first = false;
    seg_start = i + 1;
  }
  return !first;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Decodes one encoded unit at text[pos] the way an upstream might have escaped a
/// single character: %XX (URL), \uXXXX (JSON, ASCII range only), \/ \\ \" (JSON).
/// Returns the decoded byte and sets *len, or -1 when text[pos] starts no unit.
int DecodeUnit(std::string_view text, size_t pos, size_t* len) {
  const size_t n = text.size();
  if (text[pos] == '%' && pos + 2 < n) {
    int hi = HexValue(text[pos + 1]);
    int lo = HexValue(text[pos + 2]);
    if (hi >= 0 && lo >= 0) {
      *len = 3;
      return hi * 16 + lo;
    }
    return -1;
  }
  if (text[pos] == '\\' && pos + 1 < n) {
    char e = text[pos + 1];
    if (e == '/' || e == '\\' || e == '"') {
      *len = 2;
      return static_cast<unsigned char>(e);
    }
    if (e == 'u' && pos + 5 < n) {
      int v = 0;
      for (size_t k = pos + 2; k < pos + 6; ++k) {
        int h = HexValue(text[k]);
        if (h < 0) return -1;
        v = v * 16 + h;
      }
      if (v < 0x80) {
        *len = 6;
        return v;
      }
    }
  }
  return -1;
}

/// Length of the text at `pos` that spells `secret` in any mix of raw and encoded
/// characters, or 0 when it does not. A '%', '\\' or '+' in the secret may be raw or
/// the start of an encoding, so both readings are tried (depth = secret length).
size_t MatchAt(std::string_view text, size_t pos, std::string_view secret) {
  if (secret.empty()) return 0;
  size_t j = pos;
  for (size_t k = 0; k < secret.size(); ++k) {
    const char c = secret[k];
    if (j >= text.size()) return 0;
    size_t len = 0;
    int decoded = DecodeUnit(text, j, &len);
    bool raw = text[j] == c || (c == ' ' && text[j] == '+');  // '+' is a form-encoded space
    bool enc = decoded >= 0 && decoded == static_cast<unsigned char>(c);
    if (raw && enc) {
      // Ambiguous (the secret holds '%' or '\\'): try the decoded reading first.
      std::string_view rest = secret.substr(k + 1);
      if (rest.empty()) return j + len - pos;
      size_t tail = MatchAt(text, j + len, rest);
      if (tail > 0) return j + len + tail - pos;
      ++j;
      continue;
    }
    if (raw) {
      ++j;
    } else if (enc) {
      j += len;
    } else {
      return 0;
    }
  }
  return j - pos;
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 of the whole 3-byte groups of `bytes` (no padding).
std::string Base64WholeGroups(std::string_view bytes) {
  std::string out;
  for (size_t i = 0; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                 (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                 static_cast<unsigned char>(bytes[i + 2]);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  return out;
}

}  // namespace

std::string Fingerprint(std::string_view key) {
  if (key.empty()) return "(no key)";
  std::string out;
  if (key.size() < 16) {
    // Very short keys (test keys, local tokens) would be half revealed by two
    // characters: they show nothing but the ellipsis.
    out = kEllipsis;
    if (key.size() > 4) out += key.substr(key.size() - 2);
    return out;
  }
  // The longest vendor prefix ending in '-' within the first 10 characters, kept
  // short enough that at least 8 characters between prefix and tail stay hidden.
  const size_t max_prefix = std::min<size_t>(10, key.size() - 12);
  size_t prefix_len = 0;
  for (size_t i = 0; i < max_prefix; ++i) {
    if (key[i] == '-' && LooksLikeVendorPrefix(key.substr(0, i + 1))) prefix_len = i + 1;
  }
  out = key.substr(0, prefix_len);
  out += kEllipsis;
  out += key.substr(key.size() - 4);
  return out;
}

void Scrubber::Add(std::string_view secret) {
  if (secret.empty()) return;
  std::string s(secret);
  if (std::find(needles_.begin(), needles_.end(), s) != needles_.end()) return;
  needles_.push_back(s);
  // Longest first, so a key that contains another key is removed whole.
  std::stable_sort(needles_.begin(), needles_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  // Base64 (e.g. Basic auth) of text containing the key: the key can start at any of
  // three byte alignments; for each, the characters that depend only on key bytes
  // are a fixed string. Too short a core would redact innocent base64 text.
  for (size_t align = 0; align < 3; ++align) {
    size_t skip = (3 - align) % 3;  // key bytes that share a group with preceding text
    if (secret.size() <= skip) continue;
    std::string core = Base64WholeGroups(secret.substr(skip));
    if (core.size() < 12) continue;
    base64_cores_.push_back(core);
    std::replace(core.begin(), core.end(), '+', '-');  // base64url
    std::replace(core.begin(), core.end(), '/', '_');
    if (core != base64_cores_.back()) base64_cores_.push_back(core);
  }
  std::stable_sort(base64_cores_.begin(), base64_cores_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Scrubber::Scrub(std::string_view text) const {
  if (needles_.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t matched = 0;
    for (const std::string& secret : needles_) {
      matched = MatchAt(text, i, secret);
      if (matched > 0) break;
    }
    if (matched > 0) {
      out += kRedacted;
      i += matched;
    } else {
      out += text[i++];
    }
  }
  for (const std::string& core : base64_cores_) {
    size_t pos = 0;
    while ((pos = out.find(core, pos)) != std::string::npos) {
      out.replace(pos, core.size(), kRedacted);
      pos += kRedacted.size();
    }
  }
  return out;
}

}  // namespace kpm
