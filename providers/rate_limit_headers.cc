#include "providers/rate_limit_headers.h"

#include <array>
#include <charconv>
#include <string>
#include <system_error>

#include "common/strings.h"

namespace kpm::providers {
namespace {

using keypool::RateLimitInfo;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

/// A non-negative decimal "123" or "12.5" at the front of `s`, as an integer part and
/// a fraction in millionths (truncated past 6 digits). Consumes it. Bounded: more
/// than 12 integer digits is garbage.
bool TakeDecimal(std::string_view* s, int64_t* whole, int64_t* micro) {
  size_t i = 0;
  int64_t w = 0;
  while (i < s->size() && IsDigit((*s)[i])) {
    if (i >= 12) return false;
    w = w * 10 + ((*s)[i] - '0');
    ++i;
  }
  size_t int_digits = i;
  int64_t f = 0;
  size_t frac_digits = 0;
  if (i < s->size() && (*s)[i] == '.') {
    ++i;
    while (i < s->size() && IsDigit((*s)[i])) {
      if (frac_digits < 6) {
        f = f * 10 + ((*s)[i] - '0');
        ++frac_digits;
      }
      ++i;
    }
    if (frac_digits == 0 && int_digits == 0) return false;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  for (size_t k = frac_digits; k < 6; ++k) f *= 10;
  *whole = w;
  *micro = f;
  s->remove_prefix(i);
  return true;
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Non-negative decimal seconds (float allowed) -> ms, rounded up; bounded.
std::optional<int64_t> ParseSecondsMs(std::string_view text) {
  text = Trim(text);
  int64_t whole = 0, micro = 0;
  if (!TakeDecimal(&text, &whole, &micro) || !text.empty()) return std::nullopt;
  int64_t ms = whole * 1000 + CeilDiv(micro, 1000);
  if (ms > kMaxHintMs) return std::nullopt;
  return ms;
}

/// A whole decimal integer (optional '-'), nothing else but surrounding space.
std::optional<int64_t> ParseInt(std::string_view text) {
  text = Trim(text);
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

std::optional<int64_t> CivilToMs(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi, int64_t s) {
  if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
    return std::nullopt;
  }
  return ((DaysFromCivil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + s * 1000;
}

/// Exactly `n` digits at the front of `s`, consumed.
bool TakeDigits(std::string_view* s, size_t n, int64_t* out) {
  if (s->size() < n) return false;
  int64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!IsDigit((*s)[i])) return false;
    v = v * 10 + ((*s)[i] - '0');
  }
  *out = v;
  s->remove_prefix(n);
  return true;
}

bool TakeChar(std::string_view* s, char c) {
  if (s->empty() || s->front() != c) return false;
  s->remove_prefix(1);
  return true;
}

std::optional<int64_t> MonthFromName(std::string_view name) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (size_t i = 0; i < kMonths.size(); ++i) {
    if (name == kMonths[i]) return static_cast<int64_t>(i + 1);
  }
  return std::nullopt;
}

/// "08:49:37"
bool TakeTime(std::string_view* s, int64_t* h, int64_t* mi, int64_t* sec) {
  return TakeDigits(s, 2, h) && TakeChar(s, ':') && TakeDigits(s, 2, mi) && TakeChar(s, ':') &&
         TakeDigits(s, 2, sec);
}

}  // namespace

std::optional<int64_t> ParseGoDurationMs(std::string_view text) {
  text = Trim(text);
  if (text.empty()) return std::nullopt;
  // Azure and some compatible servers send bare seconds.
  if (auto plain = ParseSecondsMs(text)) return plain;
  int64_t total_us = 0;
  while (!text.empty()) {
    int64_t whole = 0, micro = 0;
    if (!TakeDecimal(&text, &whole, &micro)) return std::nullopt;
    int64_t unit_us = 0;
    if (text.starts_with("ms")) {
      unit_us = 1000;
      text.remove_prefix(2);
    } else if (text.starts_with("us")) {
      unit_us = 1;
      text.remove_prefix(2);
    } else if (text.starts_with("\xC2\xB5s")) {  // µs
      unit_us = 1;
      text.remove_prefix(3);
    } else if (text.starts_with("ns")) {
      total_us += whole / 1000;  // sub-microsecond parts vanish in the round-up below
      text.remove_prefix(2);
      if (total_us > kMaxHintMs * 1000) return std::nullopt;
      continue;
    } else if (text.starts_with("h")) {
      unit_us = 3600LL * 1000 * 1000;
      text.remove_prefix(1);
    } else if (text.starts_with("m")) {
      unit_us = 60LL * 1000 * 1000;
      text.remove_prefix(1);
    } else if (text.starts_with("s")) {
      unit_us = 1000LL * 1000;
      text.remove_prefix(1);
    } else {
      return std::nullopt;
    }
    if (whole > kMaxHintMs) return std::nullopt;
    total_us += whole * unit_us + micro * unit_us / 1000000;
    if (total_us > kMaxHintMs * 1000) return std::nullopt;
  }
  return CeilDiv(total_us, 1000);
}

std::optional<int64_t> ParseProtobufDurationMs(std::string_view text) {
  text = Trim(text);
  if (text.size() < 2 || text.back() != 's') return std::nullopt;
  return ParseSecondsMs(text.substr(0, text.size() - 1));
}

std::optional<int64_t> ParseHttpDateMs(std::string_view text) {
  text = Trim(text);
  int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  size_t comma = text.find(',');
  if (comma != std::string_view::npos) {
    // IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" or RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT".
    std::string_view rest = Trim(text.substr(comma + 1));
    if (!TakeDigits(&rest, 2, &d)) return std::nullopt;
    bool rfc850 = !rest.empty() && rest.front() == '-';
    if (!TakeChar(&rest, rfc850 ? '-' : ' ')) return std::nullopt;
    auto month = MonthFromName(rest.substr(0, 3));
    if (!month) return std::nullopt;
    mo = *month;
    rest.remove_prefix(3);
    if (!TakeChar(&rest, rfc850 ? '-' : ' ')) return std::nullopt;
    if (rfc850) {
      if (!TakeDigits(&rest, 2, &y)) return std::nullopt;
      y += y < 70 ? 2000 : 1900;
    } else if (!TakeDigits(&rest, 4, &y)) {
      return std::nullopt;
    }
    if (!TakeChar(&rest, ' ') || !TakeTime(&rest, &h, &mi, &s)) return std::nullopt;
    if (Trim(rest) != "GMT") return std::nullopt;
  } else {
    // asctime "Sun Nov  6 08:49:37 1994"
    if (text.size() < 24) return std::nullopt;
    std::string_view rest = text.substr(4);
    auto month = MonthFromName(rest.substr(0, 3));
    if (!month) return std::nullopt;
    mo = *month;
    rest.remove_prefix(3);
    if (!TakeChar(&rest, ' ')) return std::nullopt;
    if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (!rest.empty() && IsDigit(rest.front()) && rest.size() > 1 && IsDigit(rest[1])) {
      TakeDigits(&rest, 2, &d);
    } else if (!TakeDigits(&rest, 1, &d)) {
      return std::nullopt;
    }
    if (!TakeChar(&rest, ' ') || !TakeTime(&rest, &h, &mi, &s) || !TakeChar(&rest, ' ') ||
        !TakeDigits(&rest, 4, &y) || !Trim(rest).empty()) {
      return std::nullopt;
    }
  }
  return CivilToMs(y, mo, d, h, mi, s);
}

std::optional<int64_t> ParseRfc3339Ms(std::string_view text) {
  std::string_view s = Trim(text);
  int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!TakeDigits(&s, 4, &y) || !TakeChar(&s, '-') || !TakeDigits(&s, 2, &mo) || !TakeChar(&s, '-') ||
      !TakeDigits(&s, 2, &d)) {
    return std::nullopt;
  }
  if (!TakeChar(&s, 'T') && !TakeChar(&s, 't') && !TakeChar(&s, ' ')) return std::nullopt;
  if (!TakeTime(&s, &h, &mi, &sec)) return std::nullopt;
  int64_t frac_ms = 0;
  if (TakeChar(&s, '.')) {
    size_t digits = 0;
    while (!s.empty() && IsDigit(s.front())) {
      if (digits < 3) frac_ms = frac_ms * 10 + (s.front() - '0');
      ++digits;
      s.remove_prefix(1);
    }
    if (digits == 0) return std::nullopt;
    for (size_t k = digits; k < 3; ++k) frac_ms *= 10;
  }
  int64_t offset_min = 0;
  if (TakeChar(&s, 'Z') || TakeChar(&s, 'z')) {
  } else if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    int sign = s.front() == '+' ? 1 : -1;
    s.remove_prefix(1);
    int64_t oh = 0, om = 0;
    if (!TakeDigits(&s, 2, &oh) || !TakeChar(&s, ':') || !TakeDigits(&s, 2, &om)) return std::nullopt;
    offset_min = sign * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  if (!s.empty()) return std::nullopt;
  auto base = CivilToMs(y, mo, d, h, mi, sec);
  if (!base) return std::nullopt;
  return *base + frac_ms - offset_min * 60000;
}

std::optional<int64_t> ParseRetryAfter(std::string_view value, int64_t now_ms) {
  if (auto secs = ParseSecondsMs(value)) return now_ms + *secs;
  if (auto date = ParseHttpDateMs(value)) {
    if (*date - now_ms > kMaxHintMs) return std::nullopt;
    return *date;
  }
  return std::nullopt;
}

RateLimitInfo ParseRateLimitHeaders(const Headers& headers, int64_t now_ms) {
  Headers lower;
  for (const auto& [name, value] : headers) lower[AsciiLower(name)] = value;
  auto get = [&lower](const char* name) -> std::optional<std::string_view> {
    auto it = lower.find(name);
    if (it == lower.end()) return std::nullopt;
    return std::string_view(it->second);
  };
  auto non_negative = [](std::optional<int64_t> v) -> std::optional<int64_t> {
    if (v && *v >= 0) return v;
    return std::nullopt;
  };
  auto in_range = [now_ms](std::optional<int64_t> at) -> std::optional<int64_t> {
    if (at && *at - now_ms <= kMaxHintMs) return at;
    return std::nullopt;
  };

  RateLimitInfo info;
  if (auto v = get("retry-after-ms")) {
    std::string_view t = Trim(*v);
    int64_t whole = 0, micro = 0;
    if (TakeDecimal(&t, &whole, &micro) && t.empty() && whole <= kMaxHintMs) {
      info.retry_at_ms = now_ms + whole + (micro > 0 ? 1 : 0);  // the value is in ms
    }
  }
  if (!info.retry_at_ms) {
    if (auto v = get("retry-after")) info.retry_at_ms = ParseRetryAfter(*v, now_ms);
  }

  // OpenAI (and Groq, Azure): remaining counts and durations until reset.
  if (auto v = get("x-ratelimit-remaining-requests")) info.requests_remaining = non_negative(ParseInt(*v));
  if (auto v = get("x-ratelimit-remaining-tokens")) info.tokens_remaining = non_negative(ParseInt(*v));
  if (auto v = get("x-ratelimit-reset-requests")) {
    if (auto ms = ParseGoDurationMs(*v)) info.requests_reset_at_ms = now_ms + *ms;
  }
  if (auto v = get("x-ratelimit-reset-tokens")) {
    if (auto ms = ParseGoDurationMs(*v)) info.tokens_reset_at_ms = now_ms + *ms;
  }

  // OpenRouter: one request limit, reset as epoch ms.
  if (!info.requests_remaining) {
    if (auto v = get("x-ratelimit-remaining")) info.requests_remaining = non_negative(ParseInt(*v));
  }
  if (!info.requests_reset_at_ms) {
    if (auto v = get("x-ratelimit-reset")) {
      if (auto n = non_negative(ParseInt(*v))) {
        // The unit is not documented: epoch ms as observed, epoch seconds, or a delta.
        if (*n >= 100000000000LL) {
          info.requests_reset_at_ms = in_range(*n);
        } else if (*n >= 1000000000LL) {
          info.requests_reset_at_ms = in_range(*n * 1000);
        } else if (*n * 1000 <= kMaxHintMs) {
          info.requests_reset_at_ms = now_ms + *n * 1000;
        }
      } else if (auto ms = ParseGoDurationMs(*v)) {
        info.requests_reset_at_ms = now_ms + *ms;
      }
    }
  }

  // Anthropic: RFC 3339 resets; the token limit that is tightest decides.
  if (auto v = get("anthropic-ratelimit-requests-remaining")) {
    info.requests_remaining = non_negative(ParseInt(*v));
  }
  if (auto v = get("anthropic-ratelimit-requests-reset")) info.requests_reset_at_ms = in_range(ParseRfc3339Ms(*v));
  for (const char* kind : {"tokens", "input-tokens", "output-tokens"}) {
    std::string base = std::string("anthropic-ratelimit-") + kind;
    auto remaining = non_negative(ParseInt(get((base + "-remaining").c_str()).value_or("")));
    auto reset = in_range(ParseRfc3339Ms(get((base + "-reset").c_str()).value_or("")));
    if (!remaining) continue;
    bool tighter = !info.tokens_remaining || *remaining < *info.tokens_remaining;
    bool tie_later = info.tokens_remaining && *remaining == *info.tokens_remaining && reset &&
                     (!info.tokens_reset_at_ms || *reset > *info.tokens_reset_at_ms);
    if (tighter || tie_later) {
      info.tokens_remaining = remaining;
      info.tokens_reset_at_ms = reset;
    }
  }
  return info;
}

void ExtendRetryAt(RateLimitInfo& info, int64_t at_ms) {
  if (!info.retry_at_ms || *info.retry_at_ms < at_ms) info.retry_at_ms = at_ms;
}

}  // namespace kpm::providers
