#pragma once
/// Key redaction (SPEC §4). A key is shown only as its fingerprint; every configured
/// key value is scrubbed from any text before it is logged, returned or written.

#include <memory>
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
/// scrubber between threads; Scrub() is then safe to call concurrently (it only reads
/// the immutable index Add() built).
///
/// Each occurrence becomes `[redacted]` (no quotes, so JSON text stays valid); touching
/// occurrences share one marker. A match may mix raw characters with %XX (either hex
/// case), '+' for a space, \uXXXX and the JSON escapes \/ \\ \". Base64 of text holding a
/// key (Basic auth) is caught too: the part of the encoding that depends only on key
/// bytes is replaced, which may leave up to two encoded characters of the key's first
/// and last bytes.
///
/// Guarantee: the output holds no registered form (a key in any such mix, or a base64
/// core) except wholly inside one `[redacted]` marker. In particular no key re-forms
/// from the tail of a marker and the text after it ("ted]abcdefgh" in
/// "ted]abcdefghabcdefgh" gives "[redacted]", not "[redacted]abcdefgh").
/// Cost: one pass over the text with a prefix trie of all needles (about 2 ns per
/// byte when the text holds no key, nearly independent of the number of keys), plus
/// one pass over the output when something was redacted.
/// Trade-off: keys shorter than 8 characters are scrubbed like any other, so an
/// innocent word equal to such a key is redacted too; leaking a key is worse. A key
/// that is itself part of "[redacted]" (e.g. "dact") can still be read in the marker.
class Scrubber {
 public:
  void Add(std::string_view secret);
  std::string Scrub(std::string_view text) const;
  bool empty() const { return keys_.empty(); }

 private:
  struct Index;  // needles and their prefix trie (redact.cc); immutable once built

  std::vector<std::string> keys_;       // each secret once, in the order added
  std::shared_ptr<const Index> index_;  // rebuilt by Add(); copies of a Scrubber share it
};

}  // namespace kpm
