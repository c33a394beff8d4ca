#pragma once
// Shared by the fuzz targets: how a broken property is reported, and the guard that
// makes an exception escaping the code under test a finding (our code doesn't throw).
// KPM_FUZZ_NAME is the target's name, set by fuzz/CMakeLists.txt.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

namespace kpm::fuzz {

inline std::string_view g_input;  ///< the input being run, for the report
inline std::string g_detail;      ///< optional context a target sets before checking

[[noreturn]] inline void Fail(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", KPM_FUZZ_NAME, what.c_str());
  if (!g_detail.empty()) std::fprintf(stderr, "%s\n", g_detail.c_str());
  bool printable = g_input.size() <= 512;
  for (unsigned char c : g_input) printable = printable && (c == '\n' || (c >= 0x20 && c < 0x7f));
  if (printable) {
    std::fprintf(stderr, "  input (%zu bytes): %.*s\n", g_input.size(), static_cast<int>(g_input.size()),
                 g_input.data());
  } else {
    std::fprintf(stderr, "  input (%zu bytes; libFuzzer saved it as crash-*)\n", g_input.size());
  }
  std::abort();
}

/// `s` printable and unambiguous for a report: bytes outside ASCII 0x20-0x7e, and '\\',
/// as \xNN.
inline std::string Escaped(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

/// Runs `run` on one input; anything it throws is reported as a finding.
template <typename Run>
int RunOne(const uint8_t* data, size_t size, Run&& run) {
  g_input = std::string_view(reinterpret_cast<const char*>(data), size);
  g_detail.clear();
  try {
    run(data, size);
  } catch (const std::exception& e) {
    Fail(std::string("exception escaped: ") + e.what());
  } catch (...) {
    Fail("non-std exception escaped");
  }
  return 0;
}

}  // namespace kpm::fuzz

#define CHECK(cond)                                               \
  do {                                                            \
    if (!(cond)) ::kpm::fuzz::Fail("check failed: " #cond);       \
  } while (0)
