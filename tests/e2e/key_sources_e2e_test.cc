// End to end, issue 11 part 3: keys that do not depend on the client's environment. A key
// read from a `keyFile` and one printed by a `keyCommand` both reach the mock upstream; a
// key file readable by others stops the server at start with the fix on stderr.
#include <sys/stat.h>

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/e2e_fixture.h"

namespace kpm::testing {
namespace {

TEST_CASE("a key from keyFile and one from keyCommand both reach the upstream", "[e2e][config]") {
  TempDir keys;
  const std::string key_file = keys.WriteFile("openai-1", kCanary1 + "\n");
  REQUIRE(::chmod(key_file.c_str(), 0600) == 0);
  E2eRig rig(KeypoolBinary(), MockBinary());
  rig.mock.Script(kCanary1, {"429:retry-after=30"});  // key 1 answers 429, so key 2 is used too
  E2eServer& server = rig.Start({MockProvider(
      rig.mock, "openai", "openai", "gpt-mock",
      {"{ keyFile: " + key_file + " }",
       // printf gets the key as an argument: the server's own output must not show it either.
       "{ keyCommand: [printf, \"%s\\n\", " + kCanary2 + "] }"})});
  Json result = server.Complete();
  INFO(result.dump());
  CHECK_FALSE(result.value("isError", false));
  CHECK(Outcomes(result) == std::vector<std::string>{"rate_limited", "ok"});
  CHECK(rig.mock.KeysSeen() == std::vector<std::string>{Last4(kCanary1), Last4(kCanary2)});
  auto status = server.KeyStatus("openai");
  CHECK(status["openai#1"]["state"] == "cooling_down");
  CHECK(status["openai#2"]["state"] == "ready");
  server.CloseAndExpectCleanExit();
}

TEST_CASE("a failing keyCommand disables its key and the server runs on the others", "[e2e][config]") {
  E2eRig rig(KeypoolBinary(), MockBinary());
  E2eServer& server = rig.Start({MockProvider(
      rig.mock, "openai", "openai", "gpt-mock",
      {"{ keyCommand: [sh, -c, \"echo " + kCanary3 + " >&2; exit 7\"] }", kCanary2})});
  Json result = server.Complete();
  INFO(result.dump());
  CHECK_FALSE(result.value("isError", false));
  CHECK(rig.mock.KeysSeen() == std::vector<std::string>{Last4(kCanary2)});
  auto status = server.KeyStatus("openai");
  CHECK(status["openai#1"].dump().find("exited with code 7") != std::string::npos);
  CHECK(server.process().Stderr().find("keyCommand [sh -c …] exited with code 7; key openai#1 is disabled") !=
        std::string::npos);
  server.CloseAndExpectCleanExit();  // kCanary3 (on the command's stderr) is in no output
}

TEST_CASE("a world-readable key file is refused and every tool call names the file and chmod 600",
          "[e2e][config]") {
  TempDir dir;
  const std::string key_file = dir.WriteFile("openai-1", kCanary1 + "\n");
  REQUIRE(::chmod(key_file.c_str(), 0644) == 0);
  const std::string config_text = ConfigYaml({ProviderSpec{"openai", "openai", "http://127.0.0.1:9/v1", "gpt-mock",
                                                           {"{ keyFile: " + key_file + " }"}, ""}});
  E2eServer server(KeypoolBinary(), config_text);
  server.Initialize();
  const std::string where = server.config_path() + ":7:20: providers.openai.apiKey[0].keyFile: keyFile " + key_file;
  Json result = server.CallTool("complete", {{"prompt", "hi"}});
  CHECK(result.value("isError", false));
  CHECK(ResultText(result).find(where) != std::string::npos);
  CHECK(ResultText(result).find("chmod 600 " + key_file) != std::string::npos);
  CHECK(server.process().WaitForStderr(where, kReadTimeout));
  server.CloseAndExpectCleanExit();

  const std::string config = dir.WriteFile("config.yaml", config_text);
  auto p = RunToExit(KeypoolBinary(), {"--config", config, "--check"}, dir);
  const std::string err = p->Stderr();
  INFO("stderr: " << err);
  CHECK(p->WaitExit(milliseconds(0)) == std::optional<int>(2));
  CHECK(p->StdoutSoFar().empty());
  CHECK(err.find(config + ":7:20: providers.openai.apiKey[0].keyFile: keyFile " + key_file) != std::string::npos);
  CHECK(err.find("chmod 600 " + key_file) != std::string::npos);
  CHECK_FALSE(FindSecret(err, kCanaries).has_value());
}

}  // namespace
}  // namespace kpm::testing
