#include "common/redact.h"

// How Scrub() finds what to redact: three readings of the text, each giving byte ranges,
// merged into one set of `[redacted]` markers.
//
//  1. Windows, raw. Every 12-byte window of every key of 12+ bytes, and every 4-aligned
//     12-character window of each key's base64 cores (below), is hashed after folding
//     (ASCII lower case; '-' and '_' read as '+' and '/', so URL-safe base64 is the
//     standard alphabet). One pass over the folded text keeps the last 12 bytes in two
//     integers and looks each window up in that set. The lookup is skipped while the
//     window holds a byte no key window holds (a space, a quote...), so prose costs
//     about a byte compare per byte; otherwise a Bloom filter of ~16 bits per window
//     answers nearly every miss from one cache line. Hash equality is taken as a match
//     (a 64-bit collision only redacts 12 innocent bytes). Building is linear: hashes
//     are bucketed by their top bits with a counting pass, no sort.
//  2. Windows, decoded. Escapes (%XX, \uXXXX below 0x80, \/ \\ \") are found the way a
//     decoder reading left to right would take them; the stretch around each run of
//     escapes (11 bytes either side) is decoded and its windows that hold an escape are
//     looked up, then mapped back to the source bytes they came from.
//  3. Whole keys, any mix of encodings (the exact guarantee, also for keys shorter than
//     12 bytes and for a mix greedy decoding misreads, such as a raw '%' of the key
//     followed by hex digits): a prefix trie of every key's first 16 folded bytes gives
//     the candidates at each position, and MatchKeyAt verifies them along every reading.
//
// The marker itself is text a key might partly match, so Scrub() scans its own output
// again and redacts, in the input, whatever match is not wholly inside one marker
// (windows never are: they are longer than the marker), until nothing is left.

#include <algorithm>
#include <array>
#include <cstdint>

#include "common/strings.h"

namespace kpm {
namespace {

constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026 "…"
constexpr std::string_view kRedacted = "[redacted]";
constexpr size_t kWindow = 12;  // bytes of a key that count as a leak

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

using FoldTable = std::array<unsigned char, 256>;

constexpr FoldTable LowerTable() {
  FoldTable t{};
  for (int c = 0; c < 256; ++c) t[c] = static_cast<unsigned char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return t;
}

/// Whole-key reading: ASCII case-blind, and '+' as ' ' (a raw '+' may stand for a
/// space), so one trie walk covers both readings; MatchKeyAt decides exactly.
constexpr FoldTable kKeyFold = [] {
  FoldTable t = LowerTable();
  t['+'] = ' ';
  return t;
}();

/// Window reading: ASCII case-blind, and the URL-safe base64 alphabet as the standard
/// one, so one set of base64 windows serves both (a key's '-' also reads as '+': that
/// only widens what counts as the same 12 characters).
constexpr FoldTable kWindowFold = [] {
  FoldTable t = LowerTable();
  t['-'] = '+';
  t['_'] = '/';
  return t;
}();

/// One escape a left-to-right decoder would take: text[begin, begin + len) -> byte.
struct Unit {
  size_t begin = 0;
  size_t len = 0;
  unsigned char byte = 0;
};

/// Work buffers for one Scrub() call, reused from position to position.
struct Scratch {
  std::vector<uint32_t> ids;                             // candidate keys at a position
  std::vector<std::pair<uint32_t, size_t>> layer, next;  // trie walk: (node, text position)
  std::vector<size_t> ends, next_ends;                   // key match: text positions reached
  std::vector<Unit> units;                               // escapes, for decoded windows
};

/// Length of the longest text at `pos` that spells `secret` (in any ASCII case) in any
/// mix of raw and encoded characters, or 0 when none does. A '%', '\\' or '+' in the
/// secret may be raw or the start of an encoding, so both readings are followed; the
/// set of text positions a partial match can have reached is kept, not each path, so
/// the cost is linear in the secret's length (backtracking was exponential for a key of
/// many '\\').
size_t MatchKeyAt(std::string_view text, size_t pos, std::string_view secret, Scratch* scratch) {
  if (secret.empty()) return 0;
  std::vector<size_t>& ends = scratch->ends;
  std::vector<size_t>& next = scratch->next_ends;
  ends.assign(1, pos);
  for (const char c : secret) {
    const char lc = AsciiLowerChar(c);
    next.clear();
    for (const size_t j : ends) {
      if (j >= text.size()) continue;
      // '+': a form-encoded space.
      if (AsciiLowerChar(text[j]) == lc || (c == ' ' && text[j] == '+')) next.push_back(j + 1);
      size_t len = 0;
      const int decoded = DecodeUnit(text, j, &len);
      if (decoded >= 0 && AsciiLowerChar(static_cast<char>(decoded)) == lc) next.push_back(j + len);
    }
    if (next.empty()) return 0;
    std::sort(next.begin(), next.end());
    next.erase(std::unique(next.begin(), next.end()), next.end());
    ends.swap(next);
  }
  return ends.back() - pos;
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

/// A half-open byte range [begin, end) of some text.
struct Span {
  size_t begin = 0;
  size_t end = 0;
};

/// Appends [begin, end) to `spans`, joining it to the last span when they overlap or
/// touch (windows come in order, so a key's run of windows becomes one span).
void AddSpan(std::vector<Span>* spans, size_t begin, size_t end) {
  if (!spans->empty() && begin >= spans->back().begin && begin <= spans->back().end) {
    spans->back().end = std::max(spans->back().end, end);
  } else {
    spans->push_back({begin, end});
  }
}

/// Sorts spans and joins those that overlap or touch, so that two redactions never
/// produce two adjacent markers (a key could hide in "…acted][reda…").
void Coalesce(std::vector<Span>* spans) {
  std::sort(spans->begin(), spans->end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  std::vector<Span> out;
  for (const Span& s : *spans) {
    if (!out.empty() && s.begin <= out.back().end) {
      out.back().end = std::max(out.back().end, s.end);
    } else {
      out.push_back(s);
    }
  }
  *spans = std::move(out);
}

/// One stretch of Scrub()'s output: copied text, or a marker standing for src.
struct Piece {
  size_t out_begin = 0;
  Span src;
  bool marker = false;
};

/// `text` with each of the (coalesced) `redacted` ranges replaced by the marker; fills
/// `pieces` (in output order) to map output offsets back to `text`, and `markers`
/// with the output range of every marker.
std::string Render(std::string_view text, const std::vector<Span>& redacted, std::vector<Piece>* pieces,
                   std::vector<Span>* markers) {
  std::string out;
  out.reserve(text.size());
  pieces->clear();
  markers->clear();
  size_t copied = 0;
  for (const Span& r : redacted) {
    if (r.begin > copied) {
      pieces->push_back({out.size(), {copied, r.begin}, false});
      out.append(text, copied, r.begin - copied);
    }
    pieces->push_back({out.size(), r, true});
    markers->push_back({out.size(), out.size() + kRedacted.size()});
    out += kRedacted;
    copied = r.end;
  }
  if (copied < text.size()) {
    pieces->push_back({out.size(), {copied, text.size()}, false});
    out.append(text, copied, text.size() - copied);
  }
  return out;
}

/// The range of the original text that output range `r` came from; a marker that `r`
/// touches counts whole.
Span ToSource(const Span& r, const std::vector<Piece>& pieces) {
  auto piece_at = [&](size_t out_pos) -> const Piece& {
    auto it = std::upper_bound(pieces.begin(), pieces.end(), out_pos,
                               [](size_t p, const Piece& piece) { return p < piece.out_begin; });
    return *(it - 1);  // pieces[0].out_begin == 0 <= out_pos
  };
  const Piece& first = piece_at(r.begin);
  const Piece& last = piece_at(r.end - 1);
  Span src;
  src.begin = first.marker ? first.src.begin : first.src.begin + (r.begin - first.out_begin);
  src.end = last.marker ? last.src.end : last.src.begin + (r.end - 1 - last.out_begin) + 1;
  return src;
}

/// The last kWindow bytes pushed: `hi` holds the oldest 4, `lo` the newest 8.
struct Roller {
  uint64_t lo = 0;
  uint32_t hi = 0;

  void Push(unsigned char c) {
    hi = (hi << 8) | static_cast<uint32_t>(lo >> 56);
    lo = (lo << 8) | c;
  }
  uint64_t Hash() const {  // splitmix64's finaliser over both words
    uint64_t x = lo ^ (static_cast<uint64_t>(hi) * 0x9E3779B97F4A7C15ULL);
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
  }
};

/// Hashes of folded 12-byte windows, bucketed by their top bits, behind a Bloom filter.
class WindowSet {
 public:
  /// Adds every `stride`-th window of `folded` (bytes already folded).
  void AddWindows(std::string_view folded, size_t stride) {
    Roller r;
    for (size_t i = 0; i < folded.size(); ++i) {
      const auto c = static_cast<unsigned char>(folded[i]);
      alphabet_[c] = 1;
      r.Push(c);
      if (i + 1 >= kWindow && (i + 1 - kWindow) % stride == 0) hashes_.push_back(r.Hash());
    }
  }
  void Finish();
  bool empty() const { return hashes_.empty(); }
  /// 1 when the folded byte occurs in some window, else 0.
  size_t InAlphabet(unsigned char folded) const { return alphabet_[folded]; }
  bool Contains(uint64_t h) const;

 private:
  static uint64_t BloomBits(uint64_t h) {
    return (uint64_t{1} << (h & 63)) | (uint64_t{1} << ((h >> 6) & 63)) | (uint64_t{1} << ((h >> 12) & 63));
  }

  std::vector<uint64_t> hashes_;   // after Finish(): bucket b is [buckets_[b], buckets_[b + 1])
  std::vector<uint32_t> buckets_;
  int shift_ = 63;                 // bucket of h: h >> shift_
  std::vector<uint64_t> bloom_;    // one 64-bit word per probe, 3 bits per window
  uint64_t bloom_mask_ = 0;
  std::array<uint8_t, 256> alphabet_{};  // folded bytes that occur in some window
};

void WindowSet::Finish() {
  const size_t n = hashes_.size();
  int bits = 1;
  while ((size_t{1} << bits) < n) ++bits;
  shift_ = 64 - bits;
  buckets_.assign((size_t{1} << bits) + 1, 0);
  for (const uint64_t h : hashes_) ++buckets_[(h >> shift_) + 1];
  for (size_t b = 1; b < buckets_.size(); ++b) buckets_[b] += buckets_[b - 1];
  std::vector<uint64_t> bucketed(n);
  std::vector<uint32_t> fill(buckets_.begin(), buckets_.end() - 1);
  for (const uint64_t h : hashes_) bucketed[fill[h >> shift_]++] = h;
  hashes_.swap(bucketed);
  size_t words = 1;  // 16 filter bits per window: about 1 miss in 70 gets past the filter
  while (words * 4 < n) words *= 2;
  bloom_.assign(words, 0);
  bloom_mask_ = words - 1;
  for (const uint64_t h : hashes_) bloom_[(h >> 18) & bloom_mask_] |= BloomBits(h);
}

bool WindowSet::Contains(uint64_t h) const {
  if (hashes_.empty()) return false;
  const uint64_t bits = BloomBits(h);
  if ((bloom_[(h >> 18) & bloom_mask_] & bits) != bits) return false;
  const size_t b = h >> shift_;
  for (uint32_t i = buckets_[b]; i < buckets_[b + 1]; ++i) {
    if (hashes_[i] == h) return true;
  }
  return false;
}

/// The escapes a decoder reading `text` left to right takes (in `\\u0041` that is the
/// escaped backslash, then a raw `u0041`); bytes between them are raw.
void FindUnits(std::string_view text, std::vector<Unit>* units) {
  units->clear();
  for (size_t p = 0; p < text.size();) {
    size_t len = 0;
    const int v = text[p] == '%' || text[p] == '\\' ? DecodeUnit(text, p, &len) : -1;
    if (v >= 0) {
      units->push_back({p, len, static_cast<unsigned char>(v)});
      p += len;
    } else {
      ++p;
    }
  }
}

/// Appends the ranges of `text` that hold a window of `set`, read raw and decoded
/// (readings 1 and 2 at the top of this file).
void FindWindows(const WindowSet& set, std::string_view text, std::vector<Span>* spans, Scratch* scratch) {
  if (set.empty()) return;
  auto fold = [&](size_t i) { return kWindowFold[static_cast<unsigned char>(text[i])]; };
  // A window must lie in a run of bytes that windows hold. Look at the last byte of
  // the next possible window first and back from it (as Horspool does), so prose,
  // whose spaces and quotes break every run, costs about one look per few bytes.
  for (size_t start = 0; start + kWindow <= text.size();) {
    size_t k = start + kWindow;
    while (k > start && set.InAlphabet(fold(k - 1))) --k;
    if (k > start) {  // text[k - 1] is in no window
      start = k;
      continue;
    }
    Roller raw;
    size_t i = start;
    for (; i < start + kWindow; ++i) raw.Push(fold(i));
    for (;; ++i) {
      if (set.Contains(raw.Hash())) AddSpan(spans, i - kWindow, i);
      if (i == text.size() || !set.InAlphabet(fold(i))) break;
      raw.Push(fold(i));
    }
    start = i + 1;
  }
  if (text.find('%') == std::string_view::npos && text.find('\\') == std::string_view::npos) return;

  // Decoded: a window without an escape reads as the raw one, so only the stretch of
  // kWindow - 1 bytes either side of each run of escapes is decoded. Stretches do not
  // overlap, and the bytes of a stretch outside its escapes are raw.
  FindUnits(text, &scratch->units);
  const std::vector<Unit>& units = scratch->units;
  constexpr size_t kReach = kWindow - 1;
  for (size_t u = 0; u < units.size();) {
    size_t last = u;
    while (last + 1 < units.size() && units[last + 1].begin - (units[last].begin + units[last].len) <= 2 * kReach) {
      ++last;
    }
    const size_t begin = units[u].begin > kReach ? units[u].begin - kReach : 0;
    const size_t end = std::min(text.size(), units[last].begin + units[last].len + kReach);
    Roller decoded;
    size_t decoded_run = 0;
    std::array<size_t, kWindow> starts{};  // source offset of each of the last kWindow decoded bytes
    size_t count = 0;                      // decoded bytes so far
    size_t since_escape = kWindow;         // decoded bytes after the last escape
    size_t k = u;
    for (size_t p = begin; p < end;) {
      unsigned char byte = 0;
      size_t len = 1;
      if (k <= last && p == units[k].begin) {
        byte = units[k].byte;
        len = units[k].len;
        since_escape = 0;
        ++k;
      } else {
        byte = static_cast<unsigned char>(text[p]);
        ++since_escape;
      }
      starts[count % kWindow] = p;
      ++count;
      p += len;
      const unsigned char c = kWindowFold[byte];
      decoded.Push(c);
      decoded_run = (decoded_run + 1) * set.InAlphabet(c);
      if (decoded_run >= kWindow && since_escape < kWindow && set.Contains(decoded.Hash())) {
        AddSpan(spans, starts[count % kWindow], p);  // starts[count % kWindow]: the window's first byte
      }
    }
    u = last + 1;
  }
}

/// Trie depth: long enough that keys sharing a vendor prefix ("sk-proj-") part ways
/// in the trie, so a fingerprint such as "sk-proj-…c3d4" in the text costs no
/// verification per key.
constexpr size_t kAnchorLength = 16;

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

/// The windows of every key (readings 1 and 2), and every key with a trie of their
/// first kAnchorLength folded bytes (reading 3). Scrub() walks the trie from each text
/// position along every way the text can be read there (raw byte, or the byte an
/// escape decodes to), which yields the few keys that might start at that position;
/// only those are verified. Completeness: MatchKeyAt accepts a key only along a path of
/// such readings whose folded bytes spell the key's folded prefix, and the walk follows
/// every reading, so no match is dropped.
struct Scrubber::Index {
  struct Node {
    std::vector<std::pair<unsigned char, uint32_t>> next;  // folded byte -> child node
    std::vector<uint32_t> ends;                            // keys whose trie path ends here
  };

  WindowSet windows;
  std::vector<std::string> keys;      // distinct, longest first
  std::vector<Node> nodes;            // nodes[0] is the root
  std::array<uint32_t, 256> root{};   // root's children by folded byte, for the hot path
  std::array<bool, 256> may_start{};  // raw bytes at which some key might begin
  bool high_bytes = false;            // some key holds a byte >= 0x80

  explicit Index(std::vector<std::string> secrets);
  uint32_t Child(uint32_t node, unsigned char c) const;
  void Collect(std::string_view text, size_t start, Scratch* scratch) const;
  size_t MatchAt(std::string_view text, size_t pos, const Span* marker, Scratch* scratch) const;
  std::vector<Span> FindAll(std::string_view text, const std::vector<Span>& markers) const;
};

Scrubber::Index::Index(std::vector<std::string> secrets) : keys(std::move(secrets)) {
  // Longest first, so a key that contains another key is removed whole.
  std::sort(keys.begin(), keys.end(),
            [](const std::string& a, const std::string& b) { return a.size() != b.size() ? a.size() > b.size() : a < b; });
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());

  auto fold = [](std::string s) {
    for (char& c : s) c = static_cast<char>(kWindowFold[static_cast<unsigned char>(c)]);
    return s;
  };
  for (const std::string& secret : keys) {
    for (const char c : secret) high_bytes = high_bytes || static_cast<unsigned char>(c) >= 0x80;
    if (secret.size() >= kWindow) windows.AddWindows(fold(secret), 1);
    // Base64 (e.g. Basic auth) of text containing the key: the key can start at any of
    // three byte alignments; for each, the characters that depend only on key bytes
    // form a fixed core whose 4-aligned windows are what any base64 of 9+ key bytes
    // at that alignment shows. Too short a core would redact innocent base64 text.
    for (size_t skip = 0; skip < 3; ++skip) {  // key bytes that share a group with preceding text
      if (secret.size() <= skip) continue;
      const std::string core = Base64WholeGroups(std::string_view(secret).substr(skip));
      if (core.size() >= kWindow) windows.AddWindows(fold(core), 4);
    }
  }
  windows.Finish();

  nodes.emplace_back();
  for (uint32_t id = 0; id < keys.size(); ++id) {
    const std::string& key = keys[id];
    uint32_t node = 0;
    for (size_t k = 0; k < std::min(key.size(), kAnchorLength); ++k) {
      const unsigned char c = kKeyFold[static_cast<unsigned char>(key[k])];
      uint32_t child = Child(node, c);
      if (child == 0) {
        child = static_cast<uint32_t>(nodes.size());
        nodes.emplace_back();
        nodes[node].next.emplace_back(c, child);
        if (node == 0) root[c] = child;
      }
      node = child;
    }
    nodes[node].ends.push_back(id);
  }
  for (int c = 0; c < 256; ++c) may_start[c] = root[kKeyFold[c]] != 0;
  may_start['%'] = may_start['\\'] = true;  // escapes may decode to any first byte
}

uint32_t Scrubber::Index::Child(uint32_t node, unsigned char c) const {
  if (node == 0) return root[c];
  for (const auto& [byte, child] : nodes[node].next) {
    if (byte == c) return child;
  }
  return 0;
}

/// Sets scratch->ids to every key whose trie path can be read from text[start] on.
/// The walk goes one trie level at a time over distinct (node, text position) pairs:
/// a run of backslashes can be read in exponentially many ways, but reaches only a
/// few such pairs. Depth is bounded by kAnchorLength.
void Scrubber::Index::Collect(std::string_view text, size_t start, Scratch* scratch) const {
  std::vector<uint32_t>& ids = scratch->ids;
  std::vector<std::pair<uint32_t, size_t>>& layer = scratch->layer;
  std::vector<std::pair<uint32_t, size_t>>& next = scratch->next;
  ids.clear();
  layer.assign(1, {0, start});
  while (!layer.empty()) {
    next.clear();
    for (const auto& [node, pos] : layer) {
      if (pos >= text.size()) continue;
      auto step = [&, node = node](unsigned char c, size_t next_pos) {
        const uint32_t child = Child(node, kKeyFold[c]);
        if (child == 0) return;
        ids.insert(ids.end(), nodes[child].ends.begin(), nodes[child].ends.end());
        next.emplace_back(child, next_pos);
      };
      step(static_cast<unsigned char>(text[pos]), pos + 1);
      size_t len = 0;
      const int decoded = DecodeUnit(text, pos, &len);
      if (decoded >= 0) step(static_cast<unsigned char>(decoded), pos + len);
    }
    if (next.size() > 1) {
      std::sort(next.begin(), next.end());
      next.erase(std::unique(next.begin(), next.end()), next.end());
    }
    layer.swap(next);
  }
  if (ids.size() > 1) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  }
}

/// Length of the match of the longest key at `pos`, or 0. A match lying wholly inside
/// `marker` (a marker Scrub() wrote) does not count: the marker already hides it, and
/// skipping it must not hide a longer match. MatchKeyAt gives a key's longest reading,
/// so a key that can leave the marker does.
size_t Scrubber::Index::MatchAt(std::string_view text, size_t pos, const Span* marker, Scratch* scratch) const {
  Collect(text, pos, scratch);
  for (const uint32_t id : scratch->ids) {
    const size_t len = MatchKeyAt(text, pos, keys[id], scratch);
    if (len > 0 && !(marker != nullptr && pos + len <= marker->end)) return len;
  }
  return 0;
}

/// The ranges to redact in `text` (not coalesced), ignoring whole-key matches wholly
/// inside one of `markers` (sorted output ranges of markers; no window fits in one).
/// Empty exactly when `text` holds nothing to redact outside the markers: the key scan
/// tries every position unless a reported match covers it.
std::vector<Span> Scrubber::Index::FindAll(std::string_view text, const std::vector<Span>& markers) const {
  std::vector<Span> found;
  Scratch scratch;
  FindWindows(windows, text, &found, &scratch);
  size_t m = 0;  // first marker that ends after pos
  for (size_t pos = 0; pos < text.size();) {
    if (!may_start[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    while (m < markers.size() && markers[m].end <= pos) ++m;
    const Span* marker = m < markers.size() && markers[m].begin <= pos ? &markers[m] : nullptr;
    const size_t len = MatchAt(text, pos, marker, &scratch);
    if (len > 0) {
      found.push_back({pos, pos + len});
      pos += len;
    } else {
      ++pos;
    }
  }
  return found;
}

Scrubber::Scrubber(const Scrubber& other) : keys_(other.keys_) {
  std::lock_guard<std::mutex> lock(other.build_mu_);
  index_ = other.index_;
  ready_.store(index_.get(), std::memory_order_release);
}

Scrubber& Scrubber::operator=(const Scrubber& other) {
  if (this == &other) return *this;
  std::shared_ptr<const Index> index;
  {
    std::lock_guard<std::mutex> lock(other.build_mu_);
    index = other.index_;
  }
  keys_ = other.keys_;
  index_ = std::move(index);  // like Add(), not concurrent with this Scrubber's Scrub()
  ready_.store(index_.get(), std::memory_order_release);
  return *this;
}

Scrubber::~Scrubber() = default;

void Scrubber::Add(std::string_view secret) {
  if (secret.empty()) return;
  keys_.emplace_back(secret);
  // Dropped, not updated: copies of this Scrubber keep the index they share. Adding N
  // keys and then scrubbing builds the index once (linear in the total key length).
  index_.reset();
  ready_.store(nullptr, std::memory_order_release);
}

const Scrubber::Index& Scrubber::GetIndex() const {
  if (const Index* ready = ready_.load(std::memory_order_acquire)) return *ready;
  std::lock_guard<std::mutex> lock(build_mu_);
  if (!index_) index_ = std::make_shared<const Index>(keys_);
  ready_.store(index_.get(), std::memory_order_release);
  return *index_;
}

std::string Scrubber::Scrub(std::string_view text) const {
  if (keys_.empty()) return std::string(text);
  const Index& index = GetIndex();
  std::vector<Span> redacted = index.FindAll(text, {});
  if (redacted.empty()) return std::string(text);  // the common case: one pass, no copy but this
  Coalesce(&redacted);
  // Replacing text by the marker can create a new match: a key that begins with the end
  // of "[redacted]" ("ted]abc…") or that spans a marker. So scan the output again; any
  // match not wholly inside one marker is mapped back to the original text and redacted
  // there too. Each round redacts at least one more byte of `text` (a match outside a
  // marker covers a copied byte, as markers never touch), so this ends within
  // text.size() rounds, usually after one; the output then holds no match.
  std::vector<Piece> pieces;
  std::vector<Span> markers;
  for (size_t round = 0; round <= text.size(); ++round) {
    std::string out = Render(text, redacted, &pieces, &markers);
    std::vector<Span> again = index.FindAll(out, markers);
    if (again.empty()) return out;
    for (const Span& r : again) redacted.push_back(ToSource(r, pieces));
    Coalesce(&redacted);
  }
  return std::string(kRedacted);  // unreachable (see above); fail closed all the same
}

std::string Scrubber::ForDisplay(std::string_view raw, size_t max_bytes) const {
  const std::string scrubbed = Scrub(raw);
  std::string shown = TruncateUtf8(scrubbed, max_bytes);
  // A prefix of scrubbed text holds no key; only the "…" appended is new, and it can
  // complete a key only if some key holds non-ASCII bytes (config keys are ASCII).
  if (scrubbed.size() > max_bytes && !keys_.empty() && GetIndex().high_bytes) shown = Scrub(shown);
  return shown;
}

}  // namespace kpm
