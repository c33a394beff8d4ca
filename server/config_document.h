#pragma once
/// The config file as a format-neutral tree with positions: JSON and YAML text both
/// become a ConfigDocument, so validation (config.cc) is written once and a JSON file and
/// its YAML twin load to the same Config. The only place that knows yaml-cpp.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kpm::server {

/// Where a node or map key stands in the file.
struct ConfigMark {
  int line = 0;  ///< 1-based; 0 = unknown
  int column = 0;
};

struct ConfigEntry;

/// A parsed config file, or any node inside it. Scalars keep their text as written and
/// a kind from YAML's core schema (quoted scalars are always kString), so JSON's own
/// types come out for JSON text.
struct ConfigDocument {
  enum class Kind { kNull, kBool, kInt, kFloat, kString, kList, kMap };
  Kind kind = Kind::kNull;
  std::string text;                   ///< scalars, as written
  std::vector<ConfigDocument> items;  ///< kList
  // A named struct, not std::pair<std::string, ConfigDocument>: clang 14 with libstdc++
  // 12 rejects that pair of a still-incomplete type in C++20 (it checks the pair's
  // default-constructibility while ConfigDocument's own constructor is being defined).
  std::vector<ConfigEntry> entries;   ///< kMap, in file order
  std::vector<ConfigMark> key_marks;  ///< kMap, one per entry
  ConfigMark mark;
};

/// One `key: value` of a kMap ConfigDocument.
struct ConfigEntry {
  std::string key;
  ConfigDocument value;
};

/// Parses `text` as JSON or YAML: JSON when `display_path` ends in .json, YAML for
/// .yaml/.yml, else JSON when the content starts with `{` or `[`. JSON is checked strictly
/// (its syntax errors are JSON's), then read through yaml-cpp for positions; JSON that
/// yaml-cpp cannot read keeps its values without positions. Errors are kConfig, worded
/// as ConfigError; duplicate map keys, several YAML documents, a token yaml-cpp cannot
/// place (a stray `,`), an empty file and nesting past 64 levels (deep JSON, a recursive
/// alias) are errors. Never throws, and returns on every input.
Result<ConfigDocument> ParseConfigDocument(std::string_view text, std::string_view display_path);

/// The tree as JSON, with the kinds the loader sees: a YAML config checked against the
/// JSON Schema (config_schema.h) is typed exactly as config.cc types it (`account: 12345`
/// is a number, `"100"` a string). Integers beyond int64/uint64 and YAML's .inf/.nan
/// become doubles; positions are dropped.
nlohmann::json ConfigDocumentToJson(const ConfigDocument& doc);

/// `file:line:column: path: ` (line:column only when known, path only when not empty).
std::string ConfigLocation(std::string_view file, ConfigMark mark, std::string_view path);

/// A kConfig error: ConfigLocation + message.
Error ConfigError(std::string_view file, ConfigMark mark, std::string_view path, std::string_view message);

/// Values up to this many characters are always quoted by QuoteForMessage.
inline constexpr size_t kMaxQuotedChars = 12;

/// Quotes a name or value from the file for a message, unless it could be a pasted key
/// (SPEC §4: no key material in errors): values of at most kMaxQuotedChars characters
/// and word-like ones (lower-case letters, digits, `-_./:`, at most 4 digits, up to 64
/// characters) are quoted; anything else is described, "(a 32-character value, not
/// shown)". Control characters are written as \xNN.
std::string QuoteForMessage(std::string_view s);

/// Quotes `s` as it is (control characters as \xNN). Only for text known not to be a
/// secret: one of our own names, or a near-miss of one (a typo, edit distance <= 2).
std::string QuoteVerbatim(std::string_view s);

}  // namespace kpm::server
