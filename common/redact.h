#pragma once
/// Key redaction (SPEC §4). A key is shown only as its fingerprint; every configured
/// key value is scrubbed from any text before it is logged, returned or written.

#include <string>
#include <string_view>
#include <vector>

namespace kpm {

/// "sk-…9f3a": a non-secret prefix of at most 10 characters ending in '-' (sk-,
/// sk-proj-, sk-or-v1-), "…", and the last 4 characters; a key shorter than 16
/// characters shows only "…" and its last 2. An empty key is "(no key)".
std::string Fingerprint(std::string_view key);

/// Removes every registered secret from text, including the encoded forms an upstream
/// might echo (URL-encoded, JSON-escaped). Add() all secrets before sharing the
/// scrubber between threads; Scrub() is then safe to call concurrently.
///
/// Each occurrence becomes `[redacted]` (no quotes, so JSON text stays valid). A match
/// may mix raw characters with %XX (either hex case), '+' for a space, \uXXXX and the
/// JSON escapes \/ \\ \". Base64 of text holding a key (Basic auth) is caught too:
/// the part of the encoding that depends only on key bytes is replaced, which may
/// leave up to two encoded characters of the key's first and last bytes.
/// Trade-off: keys shorter than 8 characters are scrubbed like any other, so an
/// innocent word equal to such a key is redacted too; leaking a key is worse.
class Scrubber {
 public:
  void Add(std::string_view secret);
  std::string Scrub(std::string_view text) const;
  bool empty() const { return needles_.empty(); }

 private:
  std::vector<std::string> needles_;  // each secret, longest first; encodings matched in Scrub
  std::vector<std::string> base64_cores_;  // key-only parts of base64(…key…), longest first
};

}  // namespace kpm
