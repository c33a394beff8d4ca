#include "common/redact.h"

#include <algorithm>
#include <array>
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

/// Work buffers for one Scrub() call, reused from position to position.
struct Scratch {
  std::vector<uint32_t> ids;                             // candidate needles at a position
  std::vector<std::pair<uint32_t, size_t>> layer, next;  // trie walk: (node, text position)
  std::vector<size_t> ends, next_ends;                   // key match: text positions reached
};

/// Length of the longest text at `pos` that spells `secret` in any mix of raw and encoded
/// characters, or 0 when none does. A '%', '\\' or '+' in the secret may be raw or the
/// start of an encoding, so both readings are followed; the set of text positions a
/// partial match can have reached is kept, not each path, so the cost is linear in
/// the secret's length (backtracking was exponential for a key of many '\\').
size_t MatchKeyAt(std::string_view text, size_t pos, std::string_view secret, Scratch* scratch) {
  if (secret.empty()) return 0;
  std::vector<size_t>& ends = scratch->ends;
  std::vector<size_t>& next = scratch->next_ends;
  ends.assign(1, pos);
  for (const char c : secret) {
    next.clear();
    for (const size_t j : ends) {
      if (j >= text.size()) continue;
      if (text[j] == c || (c == ' ' && text[j] == '+')) next.push_back(j + 1);  // '+': form-encoded space
      size_t len = 0;
      if (DecodeUnit(text, j, &len) == static_cast<unsigned char>(c)) next.push_back(j + len);
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

/// Prefix trie nodes compare bytes with '+' folded to ' ' (a raw '+' may stand for a
/// space), so one walk covers both readings; exact matching is left to the verifier.
unsigned char Fold(unsigned char c) { return c == '+' ? ' ' : c; }

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

/// Every needle (each key, then the base64 cores of each key) and a trie of their first
/// kAnchorLength bytes. Scrub() walks the trie from each text position along every
/// way the text can be read there (raw byte, or the byte an escape decodes to), which
/// yields the few needles that might start at that position; only those are verified.
/// Completeness: MatchKeyAt accepts a key only along a path of such readings whose
/// folded bytes spell the key's folded prefix (the raw reading of '+' folds to ' ' like
/// the key's ' ' and '+'), and the walk follows every reading, so no match is dropped.
struct Scrubber::Index {
  struct Node {
    std::vector<std::pair<unsigned char, uint32_t>> next;  // folded byte -> child node
    std::vector<uint32_t> ends;                            // needles whose trie path ends here
  };

  std::vector<std::string> needles;  // keys longest first, then base64 cores longest first
  size_t key_count = 0;              // needles[0, key_count) are keys (may be encoded)
  std::vector<Node> nodes;           // nodes[0] is the root
  std::array<uint32_t, 256> root{};  // root's children by folded byte, for the hot path
  std::array<bool, 256> may_start{};  // raw bytes at which some needle might begin

  explicit Index(const std::vector<std::string>& keys);
  uint32_t Child(uint32_t node, unsigned char c) const;
  void Collect(std::string_view text, size_t start, Scratch* scratch) const;
  size_t MatchAt(std::string_view text, size_t pos, const Span* marker, Scratch* scratch) const;
  std::vector<Span> FindAll(std::string_view text, const std::vector<Span>& markers) const;
};

Scrubber::Index::Index(const std::vector<std::string>& keys) {
  std::vector<std::string> sorted_keys = keys;
  std::vector<std::string> cores;
  for (const std::string& secret : keys) {
    // Base64 (e.g. Basic auth) of text containing the key: the key can start at any of
    // three byte alignments; for each, the characters that depend only on key bytes
    // are a fixed string. Too short a core would redact innocent base64 text.
    for (size_t align = 0; align < 3; ++align) {
      size_t skip = (3 - align) % 3;  // key bytes that share a group with preceding text
      if (secret.size() <= skip) continue;
      std::string core = Base64WholeGroups(std::string_view(secret).substr(skip));
      if (core.size() < 12) continue;
      cores.push_back(core);
      std::replace(core.begin(), core.end(), '+', '-');  // base64url
      std::replace(core.begin(), core.end(), '/', '_');
      if (core != cores.back()) cores.push_back(core);
    }
  }
  // Longest first, so a key that contains another key is removed whole.
  auto longer = [](const std::string& a, const std::string& b) { return a.size() > b.size(); };
  std::stable_sort(sorted_keys.begin(), sorted_keys.end(), longer);
  std::stable_sort(cores.begin(), cores.end(), longer);
  needles = std::move(sorted_keys);
  key_count = needles.size();
  needles.insert(needles.end(), cores.begin(), cores.end());

  nodes.emplace_back();
  for (uint32_t id = 0; id < needles.size(); ++id) {
    const std::string& needle = needles[id];
    uint32_t node = 0;
    for (size_t k = 0; k < std::min(needle.size(), kAnchorLength); ++k) {
      const unsigned char c = Fold(static_cast<unsigned char>(needle[k]));
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
  for (int c = 0; c < 256; ++c) may_start[c] = root[Fold(static_cast<unsigned char>(c))] != 0;
  may_start['%'] = may_start['\\'] = true;  // escapes may decode to any first byte
}

uint32_t Scrubber::Index::Child(uint32_t node, unsigned char c) const {
  if (node == 0) return root[c];
  for (const auto& [byte, child] : nodes[node].next) {
    if (byte == c) return child;
  }
  return 0;
}

/// Sets scratch->ids to every needle whose trie path can be read from text[start] on.
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
        const uint32_t child = Child(node, Fold(c));
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

/// Length of the highest-priority needle match at `pos` (keys longest first, then base64
/// cores), or 0. A match lying wholly inside `marker` (a marker Scrub() wrote) does not
/// count: the marker already hides it, and skipping it must not hide a longer match.
/// MatchKeyAt gives a key's longest reading, so a key that can leave the marker does.
size_t Scrubber::Index::MatchAt(std::string_view text, size_t pos, const Span* marker, Scratch* scratch) const {
  Collect(text, pos, scratch);
  for (const uint32_t id : scratch->ids) {
    const std::string& needle = needles[id];
    size_t len = 0;
    if (id < key_count) {
      len = MatchKeyAt(text, pos, needle, scratch);
    } else if (text.substr(pos, needle.size()) == needle) {
      len = needle.size();
    }
    if (len > 0 && !(marker != nullptr && pos + len <= marker->end)) return len;
  }
  return 0;
}

/// The matches a left-to-right scan finds in `text`, ignoring those wholly inside one of
/// `markers` (sorted output ranges of markers). Empty exactly when `text` holds no
/// needle outside the markers: every position is tried unless a reported match covers it.
std::vector<Span> Scrubber::Index::FindAll(std::string_view text, const std::vector<Span>& markers) const {
  std::vector<Span> found;
  Scratch scratch;
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

void Scrubber::Add(std::string_view secret) {
  if (secret.empty()) return;
  if (std::find(keys_.begin(), keys_.end(), secret) != keys_.end()) return;
  keys_.emplace_back(secret);
  // A new index rather than an update: copies of this Scrubber keep the one they share.
  index_ = std::make_shared<const Index>(keys_);
}

std::string Scrubber::Scrub(std::string_view text) const {
  if (!index_) return std::string(text);
  std::vector<Span> redacted = index_->FindAll(text, {});
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
    std::vector<Span> again = index_->FindAll(out, markers);
    if (again.empty()) return out;
    for (const Span& r : again) redacted.push_back(ToSource(r, pieces));
    Coalesce(&redacted);
  }
  return std::string(kRedacted);  // unreachable (see above); fail closed all the same
}

}  // namespace kpm
