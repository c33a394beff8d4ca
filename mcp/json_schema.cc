#include "mcp/json_schema.h"

#include <cctype>
#include <cmath>
#include <cstddef>
#include <optional>
#include <string_view>

namespace kpm::mcp {
namespace {

using Json = nlohmann::json;

/// A field name that reads unambiguously in "path: what" (letters, digits, '_', '-').
bool PlainName(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (!std::isalnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

std::string Child(const std::string& path, std::string_view name) {
  // Names come from the client: one like `": x"` or with a newline would blur the
  // message, so anything unusual is shown JSON-quoted in brackets: ["a: b"].
  if (!PlainName(name)) {
    return path + "[" + Json(std::string(name)).dump(-1, ' ', false, Json::error_handler_t::replace) + "]";
  }
  if (path.empty()) return std::string(name);
  std::string s = path;
  s += '.';
  s += name;
  return s;
}

std::string Index(const std::string& path, std::size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string Shown(const std::string& path) { return path.empty() ? "(root)" : path; }

/// Strings unquoted (they read better in a sentence), everything else as JSON.
std::string Show(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string JoinShown(const Json& values) {
  std::string s;
  for (const auto& v : values) {
    if (!s.empty()) s += ", ";
    s += Show(v);
  }
  return s;
}

bool IsIntegral(const Json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && std::floor(d) == d;
}

std::string_view TypeOf(const Json& v) {
  if (v.is_object()) return "object";
  if (v.is_array()) return "array";
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "boolean";
  if (v.is_null()) return "null";
  if (IsIntegral(v)) return "integer";
  return "number";
}

bool HasType(const Json& v, std::string_view type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  if (type == "integer") return IsIntegral(v);
  if (type == "number") return v.is_number();
  return true;  // an unknown type name constrains nothing
}

std::size_t CodePoints(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

/// Returns the first error as "path: message", or nullopt when `v` fits.
std::optional<std::string> Check(const Json& schema, const Json& v, const std::string& path);

std::optional<std::string> Fail(const std::string& path, std::string_view what) {
  return Shown(path) + ": " + std::string(what);
}

std::optional<std::string> CheckType(const Json& schema, const Json& v, const std::string& path) {
  const auto t = schema.find("type");
  if (t == schema.end()) return std::nullopt;
  if (t->is_string()) {
    if (HasType(v, t->get<std::string>())) return std::nullopt;
    return Fail(path, "expected " + t->get<std::string>() + ", got " + std::string(TypeOf(v)));
  }
  if (t->is_array()) {
    std::string names;
    for (const auto& name : *t) {
      if (!name.is_string() || HasType(v, name.get<std::string>())) return std::nullopt;
      if (!names.empty()) names += " or ";
      names += name.get<std::string>();
    }
    return Fail(path, "expected " + names + ", got " + std::string(TypeOf(v)));
  }
  return std::nullopt;
}

std::optional<std::string> CheckObject(const Json& schema, const Json& v, const std::string& path) {
  const auto props = schema.find("properties");
  const bool has_props = props != schema.end() && props->is_object();
  if (const auto req = schema.find("required"); req != schema.end() && req->is_array()) {
    for (const auto& name : *req) {
      if (name.is_string() && !v.contains(name.get<std::string>())) {
        return Fail(Child(path, name.get<std::string>()), "required field is missing");
      }
    }
  }
  const auto extra = schema.find("additionalProperties");
  for (const auto& [key, value] : v.items()) {
    if (has_props && props->contains(key)) {
      if (auto e = Check((*props)[key], value, Child(path, key))) return e;
      continue;
    }
    if (extra == schema.end()) continue;
    if (extra->is_boolean() && !extra->get<bool>()) {
      std::string allowed;
      if (has_props) {
        for (const auto& [name, unused] : props->items()) {
          (void)unused;
          if (!allowed.empty()) allowed += ", ";
          allowed += name;
        }
      }
      return Fail(Child(path, key),
                  allowed.empty() ? "unknown field" : "unknown field (allowed: " + allowed + ")");
    }
    if (extra->is_object()) {
      if (auto e = Check(*extra, value, Child(path, key))) return e;
    }
  }
  return std::nullopt;
}

std::optional<std::string> CheckArray(const Json& schema, const Json& v, const std::string& path) {
  if (const auto m = schema.find("minItems"); m != schema.end() && m->is_number()) {
    if (static_cast<double>(v.size()) < m->get<double>()) {
      return Fail(path, "must have at least " + Show(*m) + " item(s)");
    }
  }
  if (const auto m = schema.find("maxItems"); m != schema.end() && m->is_number()) {
    if (static_cast<double>(v.size()) > m->get<double>()) {
      return Fail(path, "must have at most " + Show(*m) + " item(s)");
    }
  }
  if (const auto items = schema.find("items"); items != schema.end() && items->is_object()) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (auto e = Check(*items, v[i], Index(path, i))) return e;
    }
  }
  return std::nullopt;
}

std::optional<std::string> CheckNumber(const Json& schema, const Json& v, const std::string& path) {
  const double d = v.get<double>();
  auto bound = [&](const char* keyword) -> std::optional<double> {
    const auto b = schema.find(keyword);
    if (b == schema.end() || !b->is_number()) return std::nullopt;
    return b->get<double>();
  };
  if (auto b = bound("minimum"); b && d < *b) return Fail(path, "must be >= " + Show(schema["minimum"]));
  if (auto b = bound("maximum"); b && d > *b) return Fail(path, "must be <= " + Show(schema["maximum"]));
  if (auto b = bound("exclusiveMinimum"); b && d <= *b) {
    return Fail(path, "must be > " + Show(schema["exclusiveMinimum"]));
  }
  if (auto b = bound("exclusiveMaximum"); b && d >= *b) {
    return Fail(path, "must be < " + Show(schema["exclusiveMaximum"]));
  }
  return std::nullopt;
}

std::optional<std::string> CheckString(const Json& schema, const Json& v, const std::string& path) {
  const std::size_t n = CodePoints(v.get_ref<const std::string&>());
  if (const auto m = schema.find("minLength"); m != schema.end() && m->is_number()) {
    if (static_cast<double>(n) < m->get<double>()) {
      return Fail(path, "must be at least " + Show(*m) + " character(s) long");
    }
  }
  if (const auto m = schema.find("maxLength"); m != schema.end() && m->is_number()) {
    if (static_cast<double>(n) > m->get<double>()) {
      return Fail(path, "must be at most " + Show(*m) + " character(s) long");
    }
  }
  return std::nullopt;
}

std::optional<std::string> CheckCombinators(const Json& schema, const Json& v,
                                            const std::string& path) {
  if (const auto all = schema.find("allOf"); all != schema.end() && all->is_array()) {
    for (const auto& sub : *all) {
      if (auto e = Check(sub, v, path)) return e;
    }
  }
  for (const char* keyword : {"anyOf", "oneOf"}) {
    const auto alts = schema.find(keyword);
    if (alts == schema.end() || !alts->is_array() || alts->empty()) continue;
    std::string why;
    std::size_t matched = 0;
    for (const auto& sub : *alts) {
      if (auto e = Check(sub, v, path)) {
        if (!why.empty()) why += " | ";
        why += *e;
      } else {
        ++matched;
      }
    }
    if (matched == 0) return Fail(path, "does not match any allowed form (" + why + ")");
    if (matched > 1 && std::string_view(keyword) == "oneOf") {
      return Fail(path, "matches more than one allowed form; exactly one is expected");
    }
  }
  return std::nullopt;
}

std::optional<std::string> Check(const Json& schema, const Json& v, const std::string& path) {
  if (schema.is_boolean()) {
    return schema.get<bool>() ? std::nullopt : Fail(path, "no value is allowed here");
  }
  if (!schema.is_object()) return std::nullopt;
  if (auto e = CheckType(schema, v, path)) return e;
  if (const auto c = schema.find("const"); c != schema.end() && *c != v) {
    return Fail(path, "expected " + Show(*c));
  }
  if (const auto en = schema.find("enum"); en != schema.end() && en->is_array()) {
    bool found = false;
    for (const auto& candidate : *en) found = found || candidate == v;
    if (!found) return Fail(path, "expected one of " + JoinShown(*en));
  }
  std::optional<std::string> e;
  if (v.is_object()) {
    e = CheckObject(schema, v, path);
  } else if (v.is_array()) {
    e = CheckArray(schema, v, path);
  } else if (v.is_number()) {
    e = CheckNumber(schema, v, path);
  } else if (v.is_string()) {
    e = CheckString(schema, v, path);
  }
  if (e) return e;
  return CheckCombinators(schema, v, path);
}

}  // namespace

Status ValidateJson(const nlohmann::json& schema, const nlohmann::json& instance) {
  if (auto e = Check(schema, instance, "")) return MakeError(ErrorKind::kInvalidArgument, *e);
  return Ok{};
}

}  // namespace kpm::mcp
