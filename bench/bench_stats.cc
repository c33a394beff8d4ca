#include "bench/bench_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace kpm::bench {
namespace {

double Scale(Unit unit) {
  switch (unit) {
    case Unit::kNs: return 1.0;
    case Unit::kUs: return 1e3;
    case Unit::kMs: return 1e6;
  }
  return 1.0;
}

const char* UnitName(Unit unit) {
  switch (unit) {
    case Unit::kNs: return "ns";
    case Unit::kUs: return "us";
    case Unit::kMs: return "ms";
  }
  return "?";
}

}  // namespace

int64_t Samples::Quantile(double q) {
  if (ns_.empty()) return 0;
  if (!sorted_ || sorted_size_ != ns_.size()) {
    std::sort(ns_.begin(), ns_.end());
    sorted_ = true;
    sorted_size_ = ns_.size();
  }
  // Nearest rank: the smallest value with at least q of the samples at or below it.
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(ns_.size())));
  rank = std::clamp<size_t>(rank, 1, ns_.size());
  return ns_[rank - 1];
}

int64_t Samples::Max() { return Quantile(1.0); }

void PrintHeader(std::string_view title, Unit unit) {
  std::printf("\n== %.*s (times in %s)\n", static_cast<int>(title.size()), title.data(), UnitName(unit));
  std::printf("%-46s %8s %10s %10s %10s %10s %12s\n", "benchmark", "n", "p50", "p90", "p99", "max", "ops/s");
  std::fflush(stdout);
}

void PrintRow(std::string_view name, Samples& samples, Unit unit, double ops, double wall_seconds) {
  const double s = Scale(unit);
  const int digits = unit == Unit::kNs ? 0 : 1;
  char throughput[32] = "-";
  if (wall_seconds > 0) std::snprintf(throughput, sizeof(throughput), "%.0f", ops / wall_seconds);
  std::printf("%-46.*s %8zu %10.*f %10.*f %10.*f %10.*f %12s\n", static_cast<int>(name.size()), name.data(),
              samples.size(), digits, samples.Quantile(0.50) / s, digits, samples.Quantile(0.90) / s, digits,
              samples.Quantile(0.99) / s, digits, samples.Max() / s, throughput);
  std::fflush(stdout);
}

void PrintSection(std::string_view title) {
  std::printf("\n== %.*s\n", static_cast<int>(title.size()), title.data());
  std::fflush(stdout);
}

void PrintNote(std::string_view name, std::string_view value) {
  std::printf("%-46.*s %.*s\n", static_cast<int>(name.size()), name.data(), static_cast<int>(value.size()),
              value.data());
  std::fflush(stdout);
}

bool PrintGoal(const std::string& name, const std::string& value, const std::string& goal, bool pass) {
  std::printf("%-46s %-30s goal %-12s %s\n", name.c_str(), value.c_str(), goal.c_str(), pass ? "PASS" : "MISS");
  std::fflush(stdout);
  return pass;
}

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace kpm::bench
