#pragma once
/// Reading upstream JSON without throwing: every lookup checks the type first, so a
/// field of the wrong type reads as absent. Never use `value(k, default)`, `at()`,
/// `operator[]` or `get<>` on upstream data: each throws (or is undefined) on a
/// surprising shape. Header-only, so classify.cc and its fuzzer need no extra file.

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace kpm::providers {

using Json = nlohmann::json;

/// obj[key] when obj is an object that has it, else nullptr.
inline const Json* JsonMember(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

/// obj[key] when it is an object, else nullptr.
inline const Json* JsonObject(const Json& obj, const char* key) {
  const Json* m = JsonMember(obj, key);
  return m != nullptr && m->is_object() ? m : nullptr;
}

/// obj[key] when it is an array, else nullptr.
inline const Json* JsonArray(const Json& obj, const char* key) {
  const Json* m = JsonMember(obj, key);
  return m != nullptr && m->is_array() ? m : nullptr;
}

/// obj[key] when it is a string, else "".
inline std::string JsonString(const Json& obj, const char* key) {
  const Json* m = JsonMember(obj, key);
  return m != nullptr && m->is_string() ? m->get_ref<const std::string&>() : std::string();
}

/// True only when obj[key] is the boolean true ("yes", 1 and null are not).
inline bool JsonTrue(const Json& obj, const char* key) {
  const Json* m = JsonMember(obj, key);
  return m != nullptr && m->is_boolean() && m->get<bool>();
}

/// `v` as an int64 when it is a number that fits (a float is truncated toward zero);
/// nullopt for anything else: 1e300, NaN, 2^64-1, "12".
inline std::optional<int64_t> JsonToInt(const Json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    // 2^63 is exact as a double; anything in (-2^63, 2^63) converts without UB.
    if (!std::isfinite(d) || d >= 9223372036854775808.0 || d <= -9223372036854775808.0) return std::nullopt;
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

/// obj[key] as JsonToInt reads it; 0 when absent or unusable.
inline int64_t JsonInt(const Json& obj, const char* key) {
  const Json* m = JsonMember(obj, key);
  return m != nullptr ? JsonToInt(*m).value_or(0) : 0;
}

/// obj[key] when it is a finite number, else nullopt.
inline std::optional<double> JsonDouble(const Json& obj, const char* key) {
  const Json* m = JsonMember(obj, key);
  if (m == nullptr || !m->is_number()) return std::nullopt;
  double d = m->get<double>();
  return std::isfinite(d) ? std::optional<double>(d) : std::nullopt;
}

}  // namespace kpm::providers
