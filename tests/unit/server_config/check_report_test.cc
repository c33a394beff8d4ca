#include "server/check_report.h"

#include <catch2/catch.hpp>

#include <sstream>
#include <string>

namespace kpm::server {
namespace {

using keypool::KeyState;
using keypool::Outcome;

KeyCheck Check(const std::string& provider, const std::string& label, KeyState state, bool checked, Outcome outcome,
               const std::string& detail) {
  KeyCheck c;
  c.provider = provider;
  c.key.label = label;
  c.key.fingerprint = "sk-…" + label.substr(label.size() - 1) + "abc";
  c.key.state = state;
  c.checked = checked;
  c.outcome = outcome;
  c.detail = detail;
  return c;
}

/// The line of `text` holding `needle`, or "".
std::string LineWith(const std::string& text, const std::string& needle) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) return line;
  }
  return "";
}

std::vector<KeyCheck> Mixed() {
  return {
      Check("openai", "openai#1", KeyState::kReady, true, Outcome::kOk, "ok"),
      Check("openai", "openai#2", KeyState::kDisabled, true, Outcome::kAuthError, "401 invalid api key"),
      Check("openai", "openai#3", KeyState::kDisabled, false, Outcome::kOk,
            "not checked: environment variable K3 is not set"),
      // The server did not answer: the pool keeps the key ready, the check does not count it.
      Check("down", "down#1", KeyState::kReady, true, Outcome::kNetworkError, "connection refused"),
  };
}

TEST_CASE("A check report counts a provider usable only with a key that passed now", "[unit][config][check]") {
  CheckReport r = BuildCheckReport({"openai", "down", "empty"}, Mixed());
  CHECK_FALSE(r.ok);
  REQUIRE(r.providers.size() == 3);
  CHECK(r.providers[0].usable);
  REQUIRE(r.providers[0].keys.size() == 3);
  CHECK(r.providers[0].keys[0].usable);
  CHECK_FALSE(r.providers[0].keys[1].usable);
  CHECK(r.providers[0].keys[2].outcome == "skipped");
  CHECK_FALSE(r.providers[1].usable);
  CHECK(r.providers[1].keys[0].outcome == "network_error");
  CHECK_FALSE(r.providers[2].usable);  // no key checked at all
  CHECK(BuildCheckReport({"openai"}, Mixed()).ok);
}

TEST_CASE("The check text puts the verdict first and never shows ready for an unusable key", "[unit][config][check]") {
  const std::string text = RenderCheckText(BuildCheckReport({"openai", "down"}, Mixed()));
  INFO(text);
  // The verdict lines come first, before the table header.
  CHECK(text.rfind("ok    openai: 1 of 3 keys usable\nFAIL  down: no usable key (0 of 1 key passed the check)\n", 0) ==
        0);
  CHECK(text.find("FAIL") < text.find("PROVIDER"));
  const std::string down = LineWith(text, "down#1");
  CHECK(down.find("network_error") != std::string::npos);
  CHECK(down.find("unverified") != std::string::npos);
  CHECK(down.find("ready") == std::string::npos);
  CHECK(LineWith(text, "openai#1").find("ready") != std::string::npos);
  CHECK(LineWith(text, "openai#2").find("disabled") != std::string::npos);
  CHECK(LineWith(text, "openai#2").find("auth_error") != std::string::npos);
  CHECK(LineWith(text, "openai#3").find("skipped") != std::string::npos);
  CHECK(LineWith(text, "openai#3").find("K3 is not set") != std::string::npos);
}

TEST_CASE("A cooling key in the check text says when it is back without the word ready", "[unit][config][check]") {
  KeyCheck c = Check("p", "p#1", KeyState::kCoolingDown, true, Outcome::kRateLimited, "429 slow down");
  c.key.ready_in_ms = 41000;
  const std::string text = RenderCheckText(BuildCheckReport({"p"}, {c}));
  INFO(text);
  const std::string line = LineWith(text, "p#1");
  CHECK(line.find("cooling_down") != std::string::npos);
  CHECK(line.find("back in 41s") != std::string::npos);
  CHECK(line.find("ready") == std::string::npos);
}

TEST_CASE("The check JSON has the overall verdict and every key with its outcome", "[unit][config][check]") {
  auto j = nlohmann::json::parse(RenderCheckJson(BuildCheckReport({"openai", "down"}, Mixed())));
  CHECK(j["ok"] == false);
  REQUIRE(j["providers"].size() == 2);
  const auto& openai = j["providers"][0];
  CHECK(openai["name"] == "openai");
  CHECK(openai["usable"] == true);
  CHECK(openai["usable_keys"] == 1);
  REQUIRE(openai["keys"].size() == 3);
  CHECK(openai["keys"][0] == nlohmann::json{{"label", "openai#1"}, {"fingerprint", "sk-…1abc"}, {"state", "ready"},
                                            {"checked", true}, {"outcome", "ok"}, {"detail", ""}, {"usable", true}});
  CHECK(openai["keys"][1]["outcome"] == "auth_error");
  CHECK(openai["keys"][1]["state"] == "disabled");
  CHECK(openai["keys"][1]["detail"] == "401 invalid api key");
  CHECK(openai["keys"][2]["checked"] == false);
  const auto& down = j["providers"][1];
  CHECK(down["usable"] == false);
  CHECK(down["keys"][0]["state"] == "ready");  // the raw pool state: `usable` is the verdict
  CHECK(down["keys"][0]["usable"] == false);
  CHECK(nlohmann::json::parse(RenderCheckJson(BuildCheckReport({"openai"}, Mixed())))["ok"] == true);
}

TEST_CASE("The check JSON survives a detail that is not UTF-8", "[unit][config][check]") {
  KeyCheck c = Check("p", "p#1", KeyState::kReady, true, Outcome::kServerError, "bad \xff byte");
  std::string out;
  REQUIRE_NOTHROW(out = RenderCheckJson(BuildCheckReport({"p"}, {c})));
  CHECK(nlohmann::json::parse(out)["providers"][0]["keys"][0]["outcome"] == "server_error");
}

}  // namespace
}  // namespace kpm::server
