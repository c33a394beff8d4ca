#include "tests/support/mock_step.h"

#include <charconv>
#include <cstdlib>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

namespace kpm::testing {
namespace {

Error Bad(std::string_view step, std::string_view why) {
  return MakeError(ErrorKind::kInvalidArgument,
                   "mock step '" + std::string(step) + "': " + std::string(why));
}

/// Splits "head:rest" at the first ':'; rest is empty when there is none.
std::pair<std::string_view, std::string_view> SplitOnce(std::string_view s) {
  size_t colon = s.find(':');
  if (colon == std::string_view::npos) return {s, {}};
  return {s.substr(0, colon), s.substr(colon + 1)};
}

std::optional<int> ParseInt(std::string_view s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

std::optional<double> ParseSeconds(std::string_view s) {
  // std::from_chars for double is in GCC 11+, but strtod is simpler to bound-check here.
  std::string copy(s);
  char* end = nullptr;
  double v = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size() || v < 0) return std::nullopt;
  return v;
}

bool IsStatusWord(std::string_view s) {
  auto v = ParseInt(s);
  return s.size() == 3 && v && *v >= 100 && *v <= 599;
}

/// Options after an error word: "retry-after=2,retry-after-ms=1500".
Status ParseErrorOptions(std::string_view step, std::string_view opts, MockStep& out) {
  while (!opts.empty()) {
    size_t comma = opts.find(',');
    std::string_view opt = opts.substr(0, comma);
    opts = comma == std::string_view::npos ? std::string_view() : opts.substr(comma + 1);
    size_t eq = opt.find('=');
    std::string_view name = opt.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : opt.substr(eq + 1);
    if (name == "retry-after") {
      auto s = ParseSeconds(value);
      if (!s) return Bad(step, "retry-after needs seconds");
      out.retry_after_s = *s;
    } else if (name == "retry-after-ms") {
      auto ms = ParseInt(value);
      if (!ms) return Bad(step, "retry-after-ms needs milliseconds");
      out.retry_after_ms = *ms;
    } else {
      return Bad(step, "unknown option '" + std::string(name) + "'");
    }
  }
  return Ok{};
}

}  // namespace

Result<MockStep> ParseMockStep(std::string_view text) {
  MockStep step;
  step.source = std::string(text);
  auto [word, rest] = SplitOnce(text);
  bool has_rest = word.size() != text.size();
  using K = MockStep::Kind;

  if (word == "ok" || word == "empty" || word == "hang" || word == "drop" || word == "cut" ||
      word == "malformed" || word == "echo_key") {
    static const std::map<std::string_view, K> kSimple = {
        {"ok", K::kOk},     {"empty", K::kEmpty}, {"hang", K::kHang},
        {"drop", K::kDrop}, {"cut", K::kCut},     {"malformed", K::kMalformed},
        {"echo_key", K::kEchoKey}};
    step.kind = kSimple.at(word);
    if (!has_rest) return step;
    if (step.kind == K::kOk || step.kind == K::kCut) {
      step.text = std::string(rest);  // text may itself hold ':'
      return step;
    }
    if (step.kind == K::kHang) {
      auto ms = ParseInt(rest);
      if (!ms) return Bad(text, "hang:MS needs milliseconds");
      step.ms = *ms;
      return step;
    }
    return Bad(text, "takes no argument");
  }
  if (word == "delay" || word == "slow") {
    auto [ms_text, after] = SplitOnce(rest);
    auto ms = ParseInt(ms_text);
    if (!ms) return Bad(text, std::string(word) + ":MS needs milliseconds");
    step.ms = *ms;
    bool has_after = ms_text.size() != rest.size();
    if (word == "slow") {
      step.kind = K::kSlow;
      if (has_after) step.text = std::string(after);
      return step;
    }
    step.kind = K::kDelay;
    if (has_after) {
      auto then = ParseMockStep(after);
      if (!then) return then.error();
      step.then = std::make_shared<const MockStep>(std::move(then.value()));
    }
    return step;
  }
  if (word == "endless") {
    if (has_rest) return Bad(text, "takes no argument");
    step.kind = K::kEndless;
    return step;
  }
  if (word == "hugeline") {
    auto bytes = ParseInt(rest);
    if (!has_rest || !bytes || *bytes <= 0) return Bad(text, "hugeline:BYTES needs a byte count");
    step.kind = K::kHugeLine;
    step.bytes = *bytes;
    return step;
  }
  if (word == "remaining0") {
    step.kind = K::kRemaining0;
    step.ms = 30000;
    if (has_rest) {
      auto s = ParseSeconds(rest);
      if (!s) return Bad(text, "remaining0:SECONDS needs seconds");
      step.ms = static_cast<int>(*s * 1000);
    }
    return step;
  }
  if (word == "inband_error") {
    step.kind = K::kInbandError;
    if (has_rest) {
      if (!IsStatusWord(rest) && rest != "insufficient_quota" && rest != "context_length")
        return Bad(text, "inband_error:NAME takes an error step name");
      step.error = std::string(rest);
    }
    return step;
  }
  if (word == "status") {
    auto [code, body] = SplitOnce(rest);
    if (!IsStatusWord(code)) return Bad(text, "status:CODE:BODY needs a 3-digit code");
    step.kind = K::kRaw;
    step.status = *ParseInt(code);
    step.body = std::string(body);
    return step;
  }
  if (IsStatusWord(word) || word == "insufficient_quota" || word == "context_length") {
    step.kind = K::kError;
    step.error = std::string(word);
    if (has_rest) {
      auto parsed = ParseErrorOptions(text, rest, step);
      if (!parsed) return parsed.error();
    }
    return step;
  }
  return Bad(text, "unknown step (see docs/mock-upstream.md)");
}

Result<MockStep> ParseMockStepJson(const nlohmann::json& value) {
  if (value.is_string()) return ParseMockStep(value.get<std::string>());
  if (!value.is_object()) return Bad(value.dump(), "a step is a string or an object");
  static const std::set<std::string> kFields = {"step",   "text", "headers",    "status",
                                                "body",   "ms",   "retry_after"};
  for (const auto& [name, field] : value.items()) {
    if (!kFields.count(name)) return Bad(value.dump(), "unknown field '" + name + "'");
  }
  std::string base = "ok";
  if (value.contains("step")) {
    if (!value["step"].is_string()) return Bad(value.dump(), "\"step\" must be a string");
    base = value["step"].get<std::string>();
  }
  auto parsed = ParseMockStep(base);
  if (!parsed) return parsed.error();
  MockStep step = std::move(parsed.value());
  step.source = value.dump();
  if (value.contains("text")) {
    if (!value["text"].is_string()) return Bad(step.source, "\"text\" must be a string");
    step.text = value["text"].get<std::string>();
  }
  if (value.contains("headers")) {
    if (!value["headers"].is_object()) return Bad(step.source, "\"headers\" must be an object");
    for (const auto& [name, v] : value["headers"].items()) {
      if (!v.is_string()) return Bad(step.source, "header values must be strings");
      step.headers[name] = v.get<std::string>();
    }
  }
  if (value.contains("status")) {
    const auto& s = value["status"];
    if (!s.is_number_integer() || s.get<int>() < 100 || s.get<int>() > 599)
      return Bad(step.source, "\"status\" must be an HTTP status");
    step.status = s.get<int>();
    if (step.kind != MockStep::Kind::kRaw) {
      step.kind = MockStep::Kind::kRaw;  // a status without a step is a raw answer
    }
  }
  if (value.contains("body")) {
    if (!value["body"].is_string()) return Bad(step.source, "\"body\" must be a string");
    step.body = value["body"].get<std::string>();
    if (step.kind != MockStep::Kind::kRaw) {
      step.kind = MockStep::Kind::kRaw;
      if (step.status == 0) step.status = 200;
    }
  }
  if (value.contains("ms")) {
    if (!value["ms"].is_number_integer() || value["ms"].get<int>() < 0)
      return Bad(step.source, "\"ms\" must be a non-negative integer");
    step.ms = value["ms"].get<int>();
  }
  if (value.contains("retry_after")) {
    if (!value["retry_after"].is_number() || value["retry_after"].get<double>() < 0)
      return Bad(step.source, "\"retry_after\" must be seconds");
    step.retry_after_s = value["retry_after"].get<double>();
  }
  return step;
}

}  // namespace kpm::testing
