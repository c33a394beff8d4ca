#include "server/config_document.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <cstring>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "common/json_depth.h"

namespace kpm::server {
namespace {

// JSON is valid YAML, so JSON text is checked strictly by nlohmann (its syntax errors
// are JSON's) and then read by yaml-cpp for the line:column of every node; quoted
// scalars stay strings, plain ones are typed by YAML's core schema, which for JSON
// gives JSON's own types.

using Kind = ConfigDocument::Kind;

// YAML aliases can make a cycle and a JSON file can nest 50 000 levels (recursion here
// would overflow the stack); nothing legit nests this deep.
constexpr int kMaxDepth = 64;

// yaml-cpp keeps an alias as a second reference to its anchor's node, but converting the
// tree copies it once per reference: nine levels of nine aliases (a "billion laughs" of
// 500 bytes) is 9^9 nodes, seconds of CPU and then std::bad_alloc. Every node converted
// counts, aliases included; the largest real config is a few thousand nodes.
constexpr size_t kMaxNodes = 100000;

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

/// YAML 1.2 core schema for an untagged plain scalar (yaml-cpp leaves that to us).
Kind ResolvePlain(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE") {
    return Kind::kBool;
  }
  std::string_view body = s;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) body.remove_prefix(1);
  if (IsDigits(body)) return Kind::kInt;
  if (body == ".inf" || body == ".Inf" || body == ".INF" || s == ".nan" || s == ".NaN" || s == ".NAN") {
    return Kind::kFloat;
  }
  // [0-9]* ( . [0-9]* )? ( [eE] [-+]? [0-9]+ )? with at least one mantissa digit.
  size_t exp = body.find_first_of("eE");
  std::string_view mantissa = body.substr(0, exp);
  size_t dot = mantissa.find('.');
  std::string_view whole = mantissa.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : mantissa.substr(dot + 1);
  bool mantissa_ok = (whole.empty() || IsDigits(whole)) && (frac.empty() || IsDigits(frac)) &&
                     (!whole.empty() || !frac.empty());
  if (!mantissa_ok) return Kind::kString;
  if (exp == std::string_view::npos) return Kind::kFloat;
  std::string_view e = body.substr(exp + 1);
  if (!e.empty() && (e[0] == '-' || e[0] == '+')) e.remove_prefix(1);
  return IsDigits(e) ? Kind::kFloat : Kind::kString;
}

ConfigMark FromYamlMark(const YAML::Mark& m, ConfigMark fallback) {
  if (m.is_null() || m.line < 0 || m.column < 0) return fallback;
  return ConfigMark{m.line + 1, m.column + 1};
}

/// `budget`: nodes left to convert (kMaxNodes at the root), shared by the whole walk.
Result<ConfigDocument> FromYaml(const YAML::Node& node, std::string_view file, const std::string& path,
                                ConfigMark fallback, int depth, size_t& budget) {
  if (depth > kMaxDepth) return ConfigError(file, fallback, path, "nested too deeply (a recursive YAML alias?)");
  if (budget == 0) {
    return ConfigError(file, fallback, path,
                       "the document expands to more than " + std::to_string(kMaxNodes) +
                           " values (YAML aliases repeating aliases?); a config is far smaller");
  }
  --budget;
  ConfigDocument v;
  v.mark = FromYamlMark(node.Mark(), fallback);
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      v.kind = Kind::kNull;
      break;
    case YAML::NodeType::Scalar:
      v.text = node.Scalar();
      // "?" = plain (untagged), "!" = quoted or block scalar: always a string.
      v.kind = node.Tag() == "?" ? ResolvePlain(v.text) : Kind::kString;
      break;
    case YAML::NodeType::Sequence: {
      v.kind = Kind::kList;
      size_t i = 0;
      for (const YAML::Node& child : node) {
        auto item = FromYaml(child, file, path + "[" + std::to_string(i++) + "]", v.mark, depth + 1, budget);
        if (!item) return item.error();
        v.items.push_back(std::move(item.value()));
      }
      break;
    }
    case YAML::NodeType::Map: {
      v.kind = Kind::kMap;
      std::unordered_map<std::string, size_t> seen;  // key -> entry index (a big map stays linear)
      for (auto it = node.begin(); it != node.end(); ++it) {
        ConfigMark key_mark = FromYamlMark(it->first.Mark(), v.mark);
        if (!it->first.IsScalar()) return ConfigError(file, key_mark, path, "map keys must be plain names");
        std::string key = it->first.Scalar();
        if (auto [at, fresh] = seen.emplace(key, v.entries.size()); !fresh) {
          return ConfigError(file, key_mark, path,
                             "duplicate key " + QuoteForMessage(key) + " (first at line " +
                                 std::to_string(v.key_marks[at->second].line) + ")");
        }
        std::string child_path = path.empty() ? key : path + "." + key;
        auto child = FromYaml(it->second, file, child_path, key_mark, depth + 1, budget);
        if (!child) return child.error();
        v.entries.push_back(ConfigEntry{std::move(key), std::move(child.value())});
        v.key_marks.push_back(key_mark);
      }
      break;
    }
  }
  return v;
}

/// Only for JSON that yaml-cpp cannot read: the same tree without positions.
/// `FindJsonTooDeep` has already refused deep text; the depth check here keeps this
/// recursion bounded on its own.
Result<ConfigDocument> FromJson(const nlohmann::ordered_json& j, std::string_view file, const std::string& path,
                                int depth) {
  if (depth > kMaxDepth) {
    return ConfigError(file, ConfigMark{}, path, "nested more than " + std::to_string(kMaxDepth) + " levels deep");
  }
  ConfigDocument v;
  switch (j.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      break;
    case nlohmann::json::value_t::boolean:
      v.kind = Kind::kBool;
      v.text = j.get<bool>() ? "true" : "false";
      break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      v.kind = Kind::kInt;
      v.text = j.dump();
      break;
    case nlohmann::json::value_t::number_float:
      v.kind = Kind::kFloat;
      v.text = j.dump();
      break;
    case nlohmann::json::value_t::string:
      v.kind = Kind::kString;
      v.text = j.get<std::string>();
      break;
    case nlohmann::json::value_t::array:
      v.kind = Kind::kList;
      for (const auto& item : j) {
        auto child = FromJson(item, file, path + "[" + std::to_string(v.items.size()) + "]", depth + 1);
        if (!child) return child.error();
        v.items.push_back(std::move(child.value()));
      }
      break;
    case nlohmann::json::value_t::object:
      v.kind = Kind::kMap;
      for (auto it = j.begin(); it != j.end(); ++it) {
        auto child = FromJson(it.value(), file, path.empty() ? it.key() : path + "." + it.key(), depth + 1);
        if (!child) return child.error();
        v.entries.push_back(ConfigEntry{it.key(), std::move(child.value())});
        v.key_marks.push_back(ConfigMark{});
      }
      break;
    case nlohmann::json::value_t::binary:
      break;
  }
  return v;
}

/// nlohmann reports a 1-based byte count; turn it into line:column of the offending byte.
ConfigMark MarkFromOffset(std::string_view text, size_t byte) {
  size_t offset = std::min(byte > 0 ? byte - 1 : 0, text.size());
  ConfigMark m{1, 1};
  size_t line_start = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++m.line;
      line_start = i + 1;
    }
  }
  m.column = static_cast<int>(offset - line_start) + 1;
  return m;
}

/// Sees only where each document starts; see CheckOneYamlDocument.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::optional<YAML::Mark> last;
  void OnDocumentStart(const YAML::Mark& mark) override { last = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

/// Makes sure `text` is exactly one YAML document before YAML::Load reads the first.
/// Why not YAML::LoadAll: in yaml-cpp 0.7.0 (Debian 12) a ',' where a node should be
/// (",", "- a\n,", "&x ,") is never consumed: the parser emits an empty document that
/// stops before it, the next document starts at the same ',' again, and LoadAll keeps
/// collecting those until memory runs out (jbeder/yaml-cpp#1040, fixed upstream after
/// 0.7.0). YAML::Load reads one document only, so it returns, but it would silently
/// ignore that ',' and anything after the first document. So this pass drives the same
/// parser over the whole text, seeing only document starts, for at most three
/// documents: a document that starts where the one before it started consumed nothing,
/// which is that loop (a stray token); a second document that moved on is a real one.
/// No text scan of our own ("---" at line start, but not in a block scalar or quoted
/// string...) has to agree with yaml-cpp's tokenizer: yaml-cpp itself says where each
/// document begins. May throw whatever yaml-cpp throws.
Status CheckOneYamlDocument(std::string_view text, std::string_view file) {
  std::istringstream in{std::string(text)};
  YAML::Parser parser(in);
  DocumentStarts starts;
  int count = 0;
  YAML::Mark previous;
  YAML::Mark second;
  for (; count < 3 && parser.HandleNextDocument(starts); ++count) {
    const YAML::Mark current = starts.last.value_or(YAML::Mark::null_mark());
    if (count > 0 && current.pos == previous.pos) {
      std::string what = "text";
      if (current.pos >= 0 && static_cast<size_t>(current.pos) < text.size() && text[current.pos] == ',') {
        what = "',' (a comma separates items only inside [...] or {...})";
      }
      return ConfigError(file, FromYamlMark(current, ConfigMark{}), "", "YAML syntax error: unexpected " + what);
    }
    if (count == 1) second = current;
    previous = current;
  }
  if (count == 0) return ConfigError(file, ConfigMark{}, "", "the file is empty");
  if (count > 1) {
    return ConfigError(file, FromYamlMark(second, ConfigMark{}), "", "more than one YAML document; keep one");
  }
  return Ok{};
}

/// nlohmann's message minus its "last read: '...'" echo, which can hold a key.
std::string JsonSyntaxMessage(const std::string& what) {
  std::string msg = what;
  size_t start = msg.find("syntax error");
  if (start != std::string::npos) msg = msg.substr(start);
  size_t last_read = msg.find("; last read: ");
  if (last_read != std::string::npos) {
    size_t expected = msg.rfind("; expected ");
    msg.erase(last_read, expected != std::string::npos && expected > last_read ? expected - last_read
                                                                                 : std::string::npos);
  }
  return msg;
}

bool LooksLikeJson(std::string_view text, std::string_view display_path) {
  std::string ext = std::filesystem::path(std::string(display_path)).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".json") return true;
  if (ext == ".yaml" || ext == ".yml") return false;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (text.substr(0, 3) == "\xEF\xBB\xBF") first = text.find_first_not_of(" \t\r\n", 3);
  return first != std::string_view::npos && (text[first] == '{' || text[first] == '[');
}

/// For a std::exception out of yaml-cpp that is not its own (std::bad_alloc...): a
/// config error rather than a crash. what() is the library's text, never the file's.
Error YamlFailure(std::string_view file, const std::exception& e) {
  return ConfigError(file, ConfigMark{}, "", std::string("the YAML reader failed: ") + e.what());
}

Result<ConfigDocument> ParseDocument(std::string_view text, std::string_view file, bool json) {
  // nlohmann and yaml-cpp both take a NUL byte for the end of the text: whatever follows
  // it would be dropped without a word (a truncated copy, a binary file).
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return ConfigError(file, MarkFromOffset(text, nul + 1), "", "the file contains a NUL byte");
  }
  std::optional<nlohmann::ordered_json> parsed_json;
  if (json) {
    // nlohmann parses iteratively but copying its tree recurses, and so does FromJson.
    if (auto at = FindJsonTooDeep(text, kMaxDepth)) {
      return ConfigError(file, MarkFromOffset(text, *at + 1), "",
                         "nested more than " + std::to_string(kMaxDepth) + " levels deep");
    }
    try {
      parsed_json = nlohmann::ordered_json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      return ConfigError(file, MarkFromOffset(text, e.byte), "", JsonSyntaxMessage(e.what()));
    } catch (const std::exception&) {
      return ConfigError(file, ConfigMark{}, "", "not valid JSON");
    }
  }
  YAML::Node root;
  try {
    if (Status one = CheckOneYamlDocument(text, file); !one) return one.error();
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    // Valid JSON yaml-cpp cannot read: keep the values, lose the positions.
    if (parsed_json) return FromJson(*parsed_json, file, "", 0);
    return ConfigError(file, FromYamlMark(e.mark, ConfigMark{}), "", "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    return YamlFailure(file, e);
  }
  try {
    size_t budget = kMaxNodes;
    return FromYaml(root, file, "", ConfigMark{}, 0, budget);
  } catch (const YAML::Exception& e) {
    return ConfigError(file, FromYamlMark(e.mark, ConfigMark{}), "", "YAML error: " + e.msg);
  } catch (const std::exception& e) {
    return YamlFailure(file, e);
  }
}

}  // namespace

Result<ConfigDocument> ParseConfigDocument(std::string_view text, std::string_view display_path) {
  return ParseDocument(text, display_path, LooksLikeJson(text, display_path));
}

nlohmann::json ConfigDocumentToJson(const ConfigDocument& doc) {
  switch (doc.kind) {
    case Kind::kNull: return nullptr;
    case Kind::kBool: return !doc.text.empty() && (doc.text[0] == 't' || doc.text[0] == 'T');
    case Kind::kInt: {
      std::string_view t = doc.text;
      if (!t.empty() && t[0] == '+') t.remove_prefix(1);
      int64_t n = 0;
      if (auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n); ec == std::errc() && end == t.data() + t.size()) {
        return n;
      }
      uint64_t u = 0;
      if (auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), u); ec == std::errc() && end == t.data() + t.size()) {
        return u;
      }
      return std::strtod(std::string(t).c_str(), nullptr);
    }
    case Kind::kFloat: {
      std::string t = doc.text;
      const bool negative = !t.empty() && t[0] == '-';
      std::string body = !t.empty() && (t[0] == '-' || t[0] == '+') ? t.substr(1) : t;
      if (body == ".inf" || body == ".Inf" || body == ".INF") {
        return negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
      }
      if (body == ".nan" || body == ".NaN" || body == ".NAN") return std::numeric_limits<double>::quiet_NaN();
      return std::strtod(t.c_str(), nullptr);
    }
    case Kind::kString: return doc.text;
    case Kind::kList: {
      nlohmann::json out = nlohmann::json::array();
      for (const ConfigDocument& item : doc.items) out.push_back(ConfigDocumentToJson(item));
      return out;
    }
    case Kind::kMap: {
      nlohmann::json out = nlohmann::json::object();
      for (const ConfigEntry& e : doc.entries) out[e.key] = ConfigDocumentToJson(e.value);
      return out;
    }
  }
  return nullptr;
}

std::string ConfigLocation(std::string_view file, ConfigMark mark, std::string_view path) {
  std::string out(file);
  if (mark.line > 0) out += ":" + std::to_string(mark.line) + ":" + std::to_string(mark.column);
  out += ": ";
  if (!path.empty()) out += std::string(path) + ": ";
  return out;
}

Error ConfigError(std::string_view file, ConfigMark mark, std::string_view path, std::string_view message) {
  return MakeError(ErrorKind::kConfig, ConfigLocation(file, mark, path) + std::string(message));
}

namespace {

/// Lower-case letters, digits and `-_./:` with few digits: a name, a URL path, a type
/// word ("openai-compatibel", "my-backup.v2"). Keys are mixed-case or digit-rich (base62,
/// hex), so they are not word-like; a 32-character Mistral key is not.
bool IsWordLike(std::string_view s) {
  size_t digits = 0;
  for (unsigned char c : s) {
    if (c >= '0' && c <= '9') {
      ++digits;
      continue;
    }
    const bool word = (c >= 'a' && c <= 'z') || (c != 0 && std::strchr("-_./:", c) != nullptr);
    if (!word) return false;
  }
  return s.size() <= 64 && digits <= 4 && digits * 4 <= s.size();
}

}  // namespace

std::string QuoteForMessage(std::string_view s) {
  // Short values cannot be a whole key (the shortest real ones are 32 characters).
  if (s.size() > kMaxQuotedChars && !IsWordLike(s)) {
    return "(a " + std::to_string(s.size()) + "-character value, not shown)";
  }
  return QuoteVerbatim(s);
}

std::string QuoteVerbatim(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {  // a raw newline would start a forged log line
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace kpm::server
