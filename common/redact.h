#pragma once
/// Key redaction (SPEC §4). A key is shown only as its fingerprint; every configured
/// key value is scrubbed from any text before it is logged, returned or written.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kpm {

/// "sk-…9f3a": a non-secret prefix of at most 10 characters ending in '-' (sk-,
/// sk-proj-, sk-or-v1-), "…", and the last 4 characters; a key shorter than 16
/// characters shows only "…" and its last 2. An empty key is "(no key)".
std::string Fingerprint(std::string_view key);

/// Removes registered secrets from text, in any ASCII letter case:
///   - every whole key, raw or in the encodings an upstream might echo (a mix of %XX,
///     '+' for a space, \uXXXX, \/ \\ \"), and inside base64 (Basic auth; up to two
///     encoded characters of the key's first and last bytes may stay);
///   - every 12-character window of a key of 12 or more characters, raw or decoded, so
///     a partial echo (key[:-5], key[5:], a key cut by a length limit) is caught too.
/// Each such stretch becomes `[redacted]` (no quotes: JSON stays valid); stretches
/// that overlap or touch share one marker, and no key re-forms from a marker and the
/// text next to it. Guarantee: the output holds none of these except wholly inside
/// one marker. Limits: 11 characters of a key are not a match; a key shorter than 12
/// characters is matched whole only, and an innocent word equal to it is redacted too.
///
/// Add() only records the secret; the index is built once, by the first Scrub() after
/// the last Add(). Scrub() and ForDisplay() may run concurrently from any number of
/// threads; Add() must not run concurrently with anything. Copies share the index.
class Scrubber {
 public:
  Scrubber() = default;
  Scrubber(const Scrubber& other);
  Scrubber& operator=(const Scrubber& other);
  ~Scrubber();

  void Add(std::string_view secret);
  std::string Scrub(std::string_view text) const;

  /// The one function that turns raw upstream text into display text: scrubs all of
  /// `raw`, then cuts the result to at most `max_bytes` on a UTF-8 boundary, adding
  /// "…" when it cut (so at most max_bytes + 3 bytes). Never cut before scrubbing: a
  /// key straddling the cut would survive as a fragment.
  std::string ForDisplay(std::string_view raw, size_t max_bytes) const;

  bool empty() const { return keys_.empty(); }

 private:
  struct Index;  // window hashes and a trie of the keys (redact.cc); immutable once built
  const Index& GetIndex() const;

  std::vector<std::string> keys_;                  // as added (duplicates removed when built)
  mutable std::mutex build_mu_;                    // serialises building index_
  mutable std::shared_ptr<const Index> index_;     // built from keys_; reset by Add()
  mutable std::atomic<const Index*> ready_{nullptr};  // index_.get() once built
};

}  // namespace kpm
