// The did-you-mean logic for config messages; the name lists themselves stay in config.cc.
#include "server/config_hints.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <vector>

namespace kpm::server {

bool HasName(Names names, std::string_view s) { return std::find(names.begin(), names.end(), s) != names.end(); }

std::string JoinNames(Names names) {
  std::string out;
  for (std::string_view n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

namespace {

/// Lower case without '-' and '_', so "base_url", "BaseURL" and "baseUrl" compare equal.
std::string Normalize(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c != '-' && c != '_') out += static_cast<char>(std::tolower(c));
  }
  return out;
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string ClosestName(std::string_view unknown, Names known) {
  std::string u = Normalize(unknown);
  if (u.empty()) return "";
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (std::string_view k : known) {
    size_t d = EditDistance(u, Normalize(k));
    if (d <= 2 && d < best_distance) best = k, best_distance = d;
  }
  if (!best.empty()) return best;
  for (std::string_view k : known) {
    std::string n = Normalize(k);
    if (u.size() >= 3 && (n.find(u) != std::string::npos || u.find(n) != std::string::npos)) {
      size_t d = EditDistance(u, n);
      if (d < best_distance) best = k, best_distance = d;
    }
  }
  if (!best.empty()) return best;
  for (std::string_view k : known) {
    size_t d = EditDistance(u, Normalize(k));
    if (d < best_distance) best = k, best_distance = d;
  }
  return best_distance <= std::max<size_t>(2, u.size() / 3) ? best : "";
}

std::string DidYouMean(std::string_view unknown, Names known) {
  std::string close = ClosestName(unknown, known);
  return close.empty() ? "" : " — did you mean \"" + close + "\"?";
}

bool IsTypoOf(std::string_view unknown, Names known) {
  const std::string u = Normalize(unknown);
  return !u.empty() && std::any_of(known.begin(), known.end(),
                                   [&u](std::string_view k) { return EditDistance(u, Normalize(k)) <= 2; });
}

}  // namespace kpm::server
