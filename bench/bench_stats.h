#pragma once
/// A small statistics helper shared by the benchmarks: collect per-operation
/// durations, then print one aligned row (p50/p90/p99/max and throughput).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kpm::bench {

using BenchClock = std::chrono::steady_clock;

/// Nanoseconds between two steady_clock points.
inline int64_t ElapsedNs(BenchClock::time_point from, BenchClock::time_point to) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count();
}

/// Durations of one benchmark's measured operations (warm-up excluded by the caller).
/// Not thread-safe: give each thread its own and Merge() them afterwards.
class Samples {
 public:
  void Reserve(size_t n) { ns_.reserve(n); }
  void Add(int64_t ns) { ns_.push_back(ns); }
  void Merge(const Samples& other) { ns_.insert(ns_.end(), other.ns_.begin(), other.ns_.end()); }
  size_t size() const { return ns_.size(); }
  /// The q-quantile (0..1, nearest rank) in ns; sorts on first use after an Add.
  int64_t Quantile(double q);
  int64_t Max();

 private:
  std::vector<int64_t> ns_;
  bool sorted_ = false;
  size_t sorted_size_ = 0;
};

/// The unit a table prints its times in.
enum class Unit { kNs, kUs, kMs };

/// Prints the table header (name width 44) for `unit`.
void PrintHeader(std::string_view title, Unit unit);
/// Prints one row: n, p50, p90, p99, max in `unit`; throughput = ops / wall_seconds
/// (operations per second over the whole measured run, all threads together; "-" when
/// wall_seconds is 0, for series whose throughput means nothing).
void PrintRow(std::string_view name, Samples& samples, Unit unit, double ops, double wall_seconds);
/// Prints a section title without the latency columns.
void PrintSection(std::string_view title);
/// Prints a free-form row (a figure that is not a latency distribution).
void PrintNote(std::string_view name, std::string_view value);

/// One row of a goal table (bench_concurrency, bench_state): name, figure, goal, PASS or
/// MISS, flushed at once. Returns `pass`.
bool PrintGoal(const std::string& name, const std::string& value, const std::string& goal, bool pass);

/// `format` (one printf conversion of a double) applied to `v`: a figure for PrintGoal.
std::string Fmt(const char* format, double v);

}  // namespace kpm::bench
