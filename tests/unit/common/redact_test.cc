#include "common/redact.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace kpm {
namespace {

std::string PercentEncodeAll(const std::string& s, bool lower) {
  static const char* kUpper = "0123456789ABCDEF";
  static const char* kLower = "0123456789abcdef";
  const char* hex = lower ? kLower : kUpper;
  std::string out;
  for (unsigned char c : s) {
    out += '%';
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

std::string JsonUnicodeEscapeAll(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) out += std::string("\\u00") + hex[c >> 4] + hex[c & 15];
  return out;
}

std::string Base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    out += {t[v >> 18 & 63], t[v >> 12 & 63], t[v >> 6 & 63], t[v & 63]};
  }
  if (in.size() - i == 1) {
    unsigned v = (unsigned char)in[i] << 16;
    out += {t[v >> 18 & 63], t[v >> 12 & 63], '=', '='};
  } else if (in.size() - i == 2) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
    out += {t[v >> 18 & 63], t[v >> 12 & 63], t[v >> 6 & 63], '='};
  }
  return out;
}

TEST_CASE("Fingerprint shows a vendor prefix, an ellipsis and the last four", "[unit][common][redact]") {
  struct Row {
    std::string key;
    std::string want;
  };
  const std::vector<Row> rows = {
      {"sk-abcdefghijklmnopqrstuvwxyz9f3a", "sk-…9f3a"},
      {"sk-proj-abcdefghijklmnopqrstuvwxyzc3d4", "sk-proj-…c3d4"},
      {"sk-or-v1-0123456789abcdef0123456789abcdef", "sk-or-v1-…cdef"},
      {"sk-ant-api03-abcdefghijklmnopqrstuvwxyz-AAAA", "sk-ant-…AAAA"},  // "sk-ant-api03-" is past 10 chars
      {"sk-svcacct-abcdefghijklmnopqrstuvwxyz1234", "sk-…1234"},
      {"AIzaSyA-bcdefghijklmnopqrstuvwxyz0123", "…0123"},  // random part with a '-': no prefix
      {"gsk_abcdefghijklmnopqrstuvwxyz5678", "…5678"},
      {"sk-proj-1234567", "…67"},          // 15 chars: short key
      {"sk-proj-12345678", "sk-…5678"},   // 16 chars: the prefix shrinks so 8+ stay hidden
      {"key-1", "…-1"},
      {"abcd", "…"},                      // tiny keys show nothing
      {"", "(no key)"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.key);
    CHECK(Fingerprint(row.key) == row.want);
  }
}

TEST_CASE("A fingerprint never reveals more than the prefix and four characters", "[unit][common][redact]") {
  for (size_t len = 1; len < 60; ++len) {
    std::string key = "sk-or-v1-" + std::string(len, 'x');
    std::string fp = Fingerprint(key);
    CAPTURE(key, fp);
    size_t revealed = fp.size() >= 3 ? fp.size() - 3 : 0;  // minus the 3-byte ellipsis
    if (key.size() < 16) {
      CHECK(revealed <= 2);
    } else {
      CHECK(key.size() - revealed >= 8);
    }
  }
}

TEST_CASE("No configured key survives the scrubber in any position or encoding", "[unit][common][redact]") {
  const std::vector<std::string> canaries = {
      "sk-proj-CANARYaaaaBBBBccccDDDD1234", "sk-or-v1-CANARY/with+plus=and%pct", "AIzaSyCANARY_-key\"quote\\back",
      "k1", "short7x"};
  Scrubber scrubber;
  for (const auto& c : canaries) scrubber.Add(c);

  for (const std::string& key : canaries) {
    CAPTURE(key);
    std::string plus_form;
    for (char c : key) plus_form += c == ' ' ? '+' : c;
    std::string json_escaped;
    for (char c : key) {
      if (c == '/' || c == '"' || c == '\\') json_escaped += '\\';
      json_escaped += c;
    }
    std::string url_component;
    for (unsigned char c : key) {
      if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        url_component += static_cast<char>(c);
      } else {
        url_component += PercentEncodeAll(std::string(1, static_cast<char>(c)), false);
      }
    }
    const std::vector<std::string> forms = {key,
                                            plus_form,
                                            json_escaped,
                                            url_component,
                                            PercentEncodeAll(key, false),
                                            PercentEncodeAll(key, true),
                                            JsonUnicodeEscapeAll(key)};
    const std::vector<std::pair<std::string, std::string>> contexts = {
        {"", ""},
        {"GET https://example.test/v1/models?key=", "&alt=sse HTTP/1.1"},
        {"{\"error\":{\"message\":\"Incorrect API key provided: ", "\"}}"},
        {"Bearer ", "\n"},
        {"x", "x"},
        {"", " trailing"},
    };
    for (const std::string& form : forms) {
      for (const auto& [before, after] : contexts) {
        std::string text = before + form + after;
        std::string out = scrubber.Scrub(text);
        CAPTURE(text, out);
        CHECK(out.find(key) == std::string::npos);
        CHECK(out.find(form) == std::string::npos);
        CHECK(out.find("[redacted]") != std::string::npos);
      }
    }
  }
}

TEST_CASE("The scrubber catches a key inside base64 Basic auth at every alignment", "[unit][common][redact]") {
  const std::string key = "sk-proj-CANARYaaaaBBBBccccDDDD1234";
  Scrubber scrubber;
  scrubber.Add(key);
  for (const std::string user : {"", "u", "us", "usr"}) {
    std::string b64 = Base64(user + ":" + key);
    std::string out = scrubber.Scrub("Authorization: Basic " + b64);
    CAPTURE(user, b64, out);
    CHECK(out.find("[redacted]") != std::string::npos);
    // What is left of the encoding is the user part and a few characters at either end.
    size_t left = out.size() - std::string("Authorization: Basic [redacted]").size();
    CHECK(left <= Base64(user + ":").size() + 8);
  }
}

TEST_CASE("Scrubbing leaves other text alone and JSON valid", "[unit][common][redact]") {
  Scrubber scrubber;
  CHECK(scrubber.empty());
  CHECK(scrubber.Scrub("nothing to hide") == "nothing to hide");
  scrubber.Add("sk-proj-CANARYaaaaBBBBccccDDDD1234");
  scrubber.Add("");  // keyless entries add nothing
  CHECK(scrubber.Scrub("{\"k\":\"sk-proj-CANARYaaaaBBBBccccDDDD1234\"}") == "{\"k\":\"[redacted]\"}");
  CHECK(scrubber.Scrub("sk-proj-CANARY is not the key") == "sk-proj-CANARY is not the key");
  CHECK(scrubber.Scrub("100%% sure, trailing % and \\u12") == "100%% sure, trailing % and \\u12");
  CHECK(scrubber.Scrub("") == "");
}

TEST_CASE("A key that contains another key is removed whole", "[unit][common][redact]") {
  Scrubber scrubber;
  scrubber.Add("abcdefgh");
  scrubber.Add("xxabcdefghyy");
  CHECK(scrubber.Scrub("a xxabcdefghyy b abcdefgh") == "a [redacted] b [redacted]");
}

}  // namespace
}  // namespace kpm
