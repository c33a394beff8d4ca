#pragma once
/// One guard against deeply nested JSON, run on the raw text before a parser sees it:
/// parsing may be iterative, but copying, printing or walking the tree recurses, so a
/// value nested 60 000 levels deep would overflow the stack. Header-only, std-only.

#include <cstddef>
#include <optional>
#include <string_view>

namespace kpm {

/// The 0-based byte offset of the first `[` or `{` (outside JSON strings) that opens a
/// container nested more than `limit` deep, or nullopt when there is none. One pass;
/// text that is not JSON is scanned the same way (the parser reports its errors).
inline std::optional<size_t> FindJsonTooDeep(std::string_view text, size_t limit) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character, which may be a quote
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

}  // namespace kpm
