#pragma once
/// An enum's spellings as one table in enum order (`kStrategyNames`,
/// `kProviderTypeNames`), and the two look-ups over it, so that a name list and its
/// parser cannot drift apart. Header-only, std-only.

#include <cstddef>
#include <optional>
#include <string_view>

namespace kpm {

/// names[e], or "unknown" for a value past the table.
template <typename Enum, size_t N>
constexpr std::string_view NameOf(const std::string_view (&names)[N], Enum e) {
  const auto i = static_cast<size_t>(e);
  return i < N ? names[i] : "unknown";
}

/// The value whose name is `name` (exactly as in the table), or nullopt.
template <typename Enum, size_t N>
constexpr std::optional<Enum> FromName(const std::string_view (&names)[N], std::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

}  // namespace kpm
