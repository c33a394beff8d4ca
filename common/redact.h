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
class Scrubber {
 public:
  void Add(std::string_view secret);
  std::string Scrub(std::string_view text) const;
  bool empty() const { return needles_.empty(); }

 private:
  std::vector<std::string> needles_;  // each secret and its encodings, longest first
};

}  // namespace kpm
