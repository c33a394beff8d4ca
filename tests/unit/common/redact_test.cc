#include "common/redact.h"

#include <catch2/catch.hpp>

#include <string>
#include <thread>
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

TEST_CASE("A key cannot re-form across the marker", "[unit][common][redact]") {
  // fuzz/crashes/fuzz_scrubber/key-reformed-across-marker: the key starts with the end
  // of "[redacted]", so replacing its first copy rebuilt it from the marker's tail.
  Scrubber scrubber;
  scrubber.Add("ted]abcdefgh");
  CHECK(scrubber.Scrub("ted]abcdefghabcdefgh") == "[redacted]");
  CHECK(scrubber.Scrub("x ted]abcdefghabcdefgh y") == "x [redacted] y");
  CHECK(scrubber.Scrub("ted]abcdefgh%61bcdefgh") == "[redacted]");  // re-formed in an encoding
}

TEST_CASE("A key cannot form between two markers", "[unit][common][redact]") {
  Scrubber scrubber;
  scrubber.Add("aaaaaaaaa1");
  scrubber.Add("acted][redac");  // would read across "[redacted][redacted]"
  scrubber.Add("cted]X[reda");   // would read across "[redacted]X[redacted]"
  const std::string out1 = scrubber.Scrub("aaaaaaaaa1aaaaaaaaa1");
  CHECK(out1 == "[redacted]");  // touching redactions share one marker
  const std::string out2 = scrubber.Scrub("<aaaaaaaaa1Xaaaaaaaaa1>");
  CAPTURE(out2);
  CHECK(out2.find("cted]X[reda") == std::string::npos);
  CHECK(out2 == "<[redacted]>");
}

TEST_CASE("A key inside the marker does not hide a key crossing it", "[unit][common][redact]") {
  // "dac" matches inside "[redacted]" (harmless, the marker is ours); the rescan must
  // still find "acted]abcdefgh", which starts within that match and leaves the marker.
  Scrubber scrubber;
  scrubber.Add("dac");
  scrubber.Add("acted]abcdefgh");
  scrubber.Add("zzzzzzzz");
  CHECK(scrubber.Scrub("zzzzzzzzabcdefgh") == "[redacted]");  // not "[redacted]abcdefgh"
}

TEST_CASE("A key is found at any byte, not only where an escape would start", "[unit][common][redact]") {
  Scrubber scrubber;
  scrubber.Add("4142abcdefgh");  // "%41" would decode to 'A', swallowing the key's start
  CHECK(scrubber.Scrub("%4142abcdefgh") == "%[redacted]");
  scrubber.Add("u0041bcdefghij");
  CHECK(scrubber.Scrub("\\u0041bcdefghij") == "\\[redacted]");
  scrubber.Add("p%41ss word+x");  // '%' and '+' both raw and as escapes
  for (const std::string form : {"p%41ss word+x", "p%2541ss+word%2Bx", "p\\u0025\\u0034\\u0031ss%20word+x"}) {
    CAPTURE(form);
    CHECK(scrubber.Scrub("=" + form + ";") == "=[redacted];");
  }
}

TEST_CASE("A key of many backslashes is matched in linear time", "[unit][common][redact]") {
  // Found by fuzz_scrubber (a timeout): each '\\' can be raw or half of the escape "\\\\",
  // and trying the readings one path at a time took exponential time.
  const std::string key(38, '\\');
  Scrubber scrubber;
  scrubber.Add(key);
  CHECK(scrubber.Scrub("x:" + key) == "x:[redacted]");
  CHECK(scrubber.Scrub("x:" + key + key) == "x:[redacted]");
  CHECK(scrubber.Scrub(std::string(4000, '\\')) == "[redacted]");
  const std::string almost(37, '\\');
  CHECK(scrubber.Scrub("x:" + almost + ";") == "x:" + almost + ";");
}

TEST_CASE("Keys sharing a vendor prefix are told apart", "[unit][common][redact]") {
  Scrubber scrubber;
  std::vector<std::string> keys;
  for (int i = 0; i < 100; ++i) {
    keys.push_back("sk-proj-" + std::to_string(1000 + i) + "abcdefghijklmnopqrstuvwxyz" + std::to_string(i));
    scrubber.Add(keys.back());
  }
  const std::string listing = "openai#1 sk-proj-…1000, openai#2 sk-proj-1001abcdefghijklmnopq";
  CHECK(scrubber.Scrub(listing) == listing);
  for (const std::string& key : keys) {
    CAPTURE(key);
    CHECK(scrubber.Scrub("key=" + key + "&k2=" + PercentEncodeAll(key, true)) == "key=[redacted]&k2=[redacted]");
  }
}

TEST_CASE("Scrub is safe to call from several threads at once", "[unit][common][redact]") {
  Scrubber scrubber;
  for (int i = 0; i < 20; ++i) scrubber.Add("sk-proj-CANARY" + std::to_string(i) + "xxxxxxxxxxxxxxxx");
  const std::string text = "a sk-proj-CANARY7xxxxxxxxxxxxxxxx b " + JsonUnicodeEscapeAll("sk-proj-CANARY19xxxxxxxxxxxxxxxx");
  const std::string want = "a [redacted] b [redacted]";
  std::vector<int> wrong(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) wrong[t] += scrubber.Scrub(text) != want;
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == std::vector<int>(4, 0));
}

}  // namespace
}  // namespace kpm
