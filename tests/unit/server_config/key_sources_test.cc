// Keys from a file (keyFile) and from a command (keyCommand), issue 11: server/key_sources.h
// directly, and through the config loader (server/config.h).
#include "server/key_sources.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "server/config.h"
#include "tests/support/stdio_driver.h"

namespace kpm::server {
namespace {

using std::chrono::milliseconds;
using testing::TempDir;

const std::string kSecret = "sk-canary-Ka7Qz2XwLp9Rt4VbNcAA1111";
const std::string kSecret2 = "sk-canary-Mb3Wy8UvJq5Ps1TdHeBB2222";

/// True when `text` holds `key` or any 12-character piece of it.
bool HoldsPieceOf(const std::string& text, const std::string& key) {
  for (size_t i = 0; i + 12 <= key.size(); ++i) {
    if (text.find(key.substr(i, 12)) != std::string::npos) return true;
  }
  return false;
}

std::string WriteKeyFile(const TempDir& dir, const std::string& name, const std::string& contents, mode_t mode) {
  std::filesystem::create_directories(std::filesystem::path(dir.path() + "/" + name).parent_path());
  std::string path = dir.WriteFile(name, contents);
  REQUIRE(::chmod(path.c_str(), mode) == 0);
  return path;
}

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string ErrorOf(const Result<std::string>& r) {
  REQUIRE_FALSE(r.has_value());
  return r.error().message;
}

// ---- keyFile ----------------------------------------------------------------------------

TEST_CASE("a key file of mode 600 gives its first line, trimmed", "[unit][config]") {
  TempDir dir;
  std::string path = WriteKeyFile(dir, "k1", "  " + kSecret + " \t\r\nsecond line\n", 0600);
  auto key = ReadKeyFile(path);
  REQUIRE(key.has_value());
  CHECK(key.value() == kSecret);
}

TEST_CASE("a key file readable or writable by group or others is refused with chmod 600, content unshown",
          "[unit][config]") {
  TempDir dir;
  mode_t mode = GENERATE(0640, 0604, 0620, 0602, 0644);
  std::string path = WriteKeyFile(dir, "k1", kSecret + "\n", mode);
  std::string message = ErrorOf(ReadKeyFile(path));
  CHECK_THAT(message, Catch::Contains("chmod 600 " + path));
  CHECK_THAT(message, Catch::Contains("group or others"));
  CHECK_FALSE(HoldsPieceOf(message, kSecret));
}

TEST_CASE("a missing key file, an empty one and a directory are refused, naming the path", "[unit][config]") {
  TempDir dir;
  SECTION("missing") {
    CHECK_THAT(ErrorOf(ReadKeyFile(dir.path() + "/nope")), Catch::Contains("keyFile " + dir.path() + "/nope: no such file"));
  }
  SECTION("empty") {
    std::string path = WriteKeyFile(dir, "empty", "", 0600);
    CHECK_THAT(ErrorOf(ReadKeyFile(path)), Catch::Contains(path + " is empty"));
  }
  SECTION("only whitespace") {
    std::string path = WriteKeyFile(dir, "blank", " \n\t\n", 0600);
    CHECK_THAT(ErrorOf(ReadKeyFile(path)), Catch::Contains(path + " is empty"));
  }
  SECTION("a blank first line") {
    std::string path = WriteKeyFile(dir, "late", "\n" + kSecret + "\n", 0600);
    std::string message = ErrorOf(ReadKeyFile(path));
    CHECK_THAT(message, Catch::Contains("empty first line"));
    CHECK_FALSE(HoldsPieceOf(message, kSecret));
  }
  SECTION("a directory") {
    CHECK_THAT(ErrorOf(ReadKeyFile(dir.path())), Catch::Contains("is a directory"));
  }
  SECTION("a FIFO, without blocking on it") {
    std::string path = dir.path() + "/fifo";
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    CHECK_THAT(ErrorOf(ReadKeyFile(path)), Catch::Contains("is not a regular file"));
  }
}

TEST_CASE("key file paths: ~/ is under HOME, a relative path under the config file's directory", "[unit][config]") {
  CHECK(ResolveKeyFilePath("~/.config/k", "/etc/kpm", "/home/u").value() == "/home/u/.config/k");
  CHECK(ResolveKeyFilePath("keys/k", "/etc/kpm", "/home/u").value() == "/etc/kpm/keys/k");
  CHECK(ResolveKeyFilePath("/abs/k", "/etc/kpm", "/home/u").value() == "/abs/k");
  CHECK(ResolveKeyFilePath("keys/k", "", "/home/u").value() == "keys/k");
  CHECK_THAT(ErrorOf(ResolveKeyFilePath("~/k", "/etc", "")), Catch::Contains("HOME is not set"));
  CHECK_THAT(ErrorOf(ResolveKeyFilePath("~bob/k", "/etc", "/home/u")), Catch::Contains("~user paths are not supported"));
}

TEST_CASE("the config loader reads keyFile through ~/ and relative paths, and not as a literal key",
          "[unit][config]") {
  TempDir home, conf;
  WriteKeyFile(home, ".config/keypool-mcp/keys/openai-1", kSecret + "\n", 0600);
  WriteKeyFile(conf, "keys/openai-2", kSecret2 + "\n", 0600);
  const std::string text =
      "mcp:\n"
      "  openai:\n"
      "    apiKey:\n"
      "      - { keyFile: ~/.config/keypool-mcp/keys/openai-1 }\n"
      "      - { keyFile: keys/openai-2, name: second }\n";
  auto config = ParseConfigText(text, conf.path() + "/config.yaml", Env({{"HOME", home.path()}}));
  INFO((config ? "" : config.error().message));
  REQUIRE(config.has_value());
  const auto& keys = config->providers.at(0).keys;
  REQUIRE(keys.size() == 2);
  CHECK(keys[0].secret == kSecret);
  CHECK(keys[0].disabled_reason.empty());
  CHECK(keys[1].secret == kSecret2);
  CHECK(keys[1].label == "second");
  CHECK(config->literal_keys == 0);
  CHECK(config->warnings.empty());
}

TEST_CASE("a keyFile that cannot give a key stops the load at its line and column", "[unit][config]") {
  TempDir dir;
  std::string path;
  std::string want;
  SECTION("readable by others") {
    path = WriteKeyFile(dir, "k", kSecret + "\n", 0644);
    want = "chmod 600 " + path;
  }
  SECTION("missing") {
    path = dir.path() + "/missing";
    want = "no such file";
  }
  SECTION("a key with a space") {
    path = WriteKeyFile(dir, "k", "sk-one two-Ka7Qz2XwLp9Rt4VbNc\n", 0600);
    want = "the key contains spaces or control characters";
  }
  const std::string text = "mcp:\n  openai:\n    apiKey: [{keyFile: " + path + "}]\n";
  auto config = ParseConfigText(text, "c.yaml", Env({}));
  REQUIRE_FALSE(config.has_value());
  CHECK_THAT(config.error().message, Catch::StartsWith("c.yaml:3:24: mcp.openai.apiKey[0].keyFile: keyFile " + path));
  CHECK_THAT(config.error().message, Catch::Contains(want));
  CHECK_FALSE(HoldsPieceOf(config.error().message, kSecret));
  CHECK_THAT(config.error().message, !Catch::Contains("two-Ka7Q"));
}

// ---- keyCommand -------------------------------------------------------------------------

TEST_CASE("a key command gives the first line of its stdout, trimmed", "[unit][config]") {
  auto key = RunKeyCommand({"printf", "  %s  \\nsecond\\n", kSecret});
  INFO((key ? "" : key.error().message));
  REQUIRE(key.has_value());
  CHECK(key.value() == kSecret);
  auto via_shell = RunKeyCommand({"sh", "-c", "echo " + kSecret2 + "; echo noise >&2"});
  REQUIRE(via_shell.has_value());
  CHECK(via_shell.value() == kSecret2);
}

TEST_CASE("a key command's stdin is /dev/null: one that reads it ends at once and printed nothing",
          "[unit][config]") {
  std::string message = ErrorOf(RunKeyCommand({"cat"}, milliseconds(5000)));
  CHECK_THAT(message, Catch::Contains("keyCommand [cat] printed no key"));
  CHECK_THAT(message, !Catch::Contains("timed out"));
}

TEST_CASE("a key command that fails is described by its exit code or signal with a short hint", "[unit][config]") {
  SECTION("non-zero exit") {
    std::string message =
        ErrorOf(RunKeyCommand({"sh", "-c", "echo 'Error: openai/key-1 is not in the password store.' >&2; exit 3"}));
    CHECK_THAT(message, Catch::StartsWith("keyCommand [sh -c …] exited with code 3"));
    CHECK_THAT(message, Catch::Contains("is not in the password store."));
  }
  SECTION("killed by a signal") {
    CHECK_THAT(ErrorOf(RunKeyCommand({"sh", "-c", "kill -9 $$"})), Catch::Contains("was killed by signal 9"));
  }
  SECTION("not found") {
    CHECK(ErrorOf(RunKeyCommand({"kpm-no-such-program-x1", "show"})) ==
          "keyCommand [kpm-no-such-program-x1 show]: kpm-no-such-program-x1 not found");
  }
  SECTION("an empty stdout") {
    CHECK_THAT(ErrorOf(RunKeyCommand({"true"})), Catch::Contains("keyCommand [true] printed no key"));
  }
}

TEST_CASE("a key command past its timeout is killed with its whole process group", "[unit][config]") {
  TempDir dir;
  const std::string pid_file = dir.path() + "/pid";
  // The shell starts a second sleep in the background (same process group) and waits.
  std::string message =
      ErrorOf(RunKeyCommand({"sh", "-c", "sleep 30 & echo $! > " + pid_file + "; wait"}, milliseconds(300)));
  CHECK(message == "keyCommand [sh -c …] timed out after 300ms");
  pid_t grandchild = 0;
  std::ifstream(pid_file) >> grandchild;
  REQUIRE(grandchild > 0);
  // Killed by the same SIGKILL; it may stay a zombie for a moment until its reaper runs.
  auto dead = [grandchild] {
    if (::kill(grandchild, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
    std::string pid_s, comm, state;
    stat >> pid_s >> comm >> state;
    return state == "Z";
  };
  bool gone = false;
  for (int i = 0; i < 200 && !(gone = dead()); ++i) std::this_thread::sleep_for(milliseconds(10));
  CHECK(gone);
  CHECK(kKeyCommandTimeout == std::chrono::seconds(10));  // what the config loader uses
}

TEST_CASE("a key command's stderr holding the secret never reaches the reason", "[unit][config]") {
  SECTION("the key echoed on stderr") {
    std::string message = ErrorOf(RunKeyCommand(
        {"sh", "-c", "echo \"token " + kSecret + " rejected (key=" + kSecret + ")\" >&2; exit 1"}));
    CHECK_THAT(message, Catch::Contains("exited with code 1"));
    CHECK_FALSE(HoldsPieceOf(message, kSecret));
  }
  SECTION("a lower-case secret printed on stdout and repeated on stderr") {
    const std::string lower = "correcthorsebatterystaplecorrect";
    std::string message = ErrorOf(RunKeyCommand({"sh", "-c", "echo " + lower + "; echo bad " + lower + " >&2; exit 2"}));
    CHECK_THAT(message, Catch::Contains("exited with code 2"));
    CHECK_FALSE(HoldsPieceOf(message, lower));
  }
  SECTION("a literal key as an argument is not shown") {
    std::string message = ErrorOf(RunKeyCommand({"sh", "-c", "exit 4", kSecret}));
    CHECK(message == "keyCommand [sh -c … …] exited with code 4");
    CHECK_FALSE(HoldsPieceOf(message, kSecret));
    CHECK(DescribeCommand({"printf", "%s", kSecret}) == "keyCommand [printf %s …]");
  }
}

TEST_CASE("a hint keeps word-like text and hides what could be a key", "[unit][config]") {
  CHECK(ScrubbedHint("\n\n  gpg: decryption failed: No secret key\nmore\n") == "gpg: decryption failed: No secret key");
  CHECK(ScrubbedHint("bad " + kSecret + " " + kSecret2 + " here") == "bad … here");
  CHECK(ScrubbedHint(kSecret).empty());
  CHECK(ScrubbedHint("").empty());
  CHECK(ScrubbedHint(std::string(200, 'a') + " x") == "\xE2\x80\xA6 x");
}

TEST_CASE("the config loader runs keyCommand once and a failing one disables only its key", "[unit][config]") {
  TempDir dir;
  const std::string counter = dir.path() + "/runs";
  const std::string text =
      "mcp:\n"
      "  openai:\n"
      "    apiKey:\n"
      "      - { keyCommand: [sh, -c, \"echo x >> " + counter + "; echo " + kSecret + "\"], name: cmd }\n"
      "      - { keyCommand: [sh, -c, \"echo " + kSecret2 + " >&2; exit 5\"], name: broken }\n"
      "      - $OTHER\n";
  auto config = ParseConfigText(text, "c.yaml", Env({{"OTHER", "sk-other-0123456789abcdefXYZ"}}));
  INFO((config ? "" : config.error().message));
  REQUIRE(config.has_value());
  const auto& keys = config->providers.at(0).keys;
  REQUIRE(keys.size() == 3);
  CHECK(keys[0].secret == kSecret);
  CHECK(keys[0].disabled_reason.empty());
  CHECK(keys[1].secret.empty());
  CHECK(keys[1].disabled_reason == "keyCommand [sh -c …] exited with code 5");
  CHECK(keys[2].secret == "sk-other-0123456789abcdefXYZ");
  CHECK(config->literal_keys == 0);
  REQUIRE(config->warnings.size() == 1);
  CHECK_THAT(config->warnings[0], Catch::StartsWith("c.yaml:5:23: mcp.openai.apiKey[1].keyCommand: keyCommand [sh -c …] "
                                                    "exited with code 5; key broken is disabled"));
  CHECK_FALSE(HoldsPieceOf(config->warnings[0], kSecret2));
  std::ifstream runs(counter);
  std::string all((std::istreambuf_iterator<char>(runs)), std::istreambuf_iterator<char>());
  CHECK(all == "x\n");
}

TEST_CASE("a key object needs exactly one of key, keyFile, keyCommand, and keyCommand a list of strings",
          "[unit][config]") {
  struct Case {
    std::string key_yaml;
    std::string want;
  };
  const Case c = GENERATE(
      Case{"{name: x}", "c.yaml:3:13: mcp.openai.apiKey: missing \"key\", \"keyFile\" or \"keyCommand\""},
      Case{"{key: $A, keyFile: /k}", "c.yaml:3:23: mcp.openai.apiKey.keyFile: \"key\" and \"keyFile\" are both given: "
                                     "a key object has exactly one of key, keyFile, keyCommand"},
      Case{"{keyCommand: [echo, k], keyFile: /k}", "c.yaml:3:37: mcp.openai.apiKey.keyFile: \"keyCommand\" and "
                                                   "\"keyFile\" are both given"},
      Case{"{keyCommand: \"pass show openai/key-1\"}",
           "c.yaml:3:26: mcp.openai.apiKey.keyCommand: expected a list of strings (the program and its arguments, "
           "no shell: [pass, show, openai/key-1]), got a string"},
      Case{"{keyCommand: []}", "c.yaml:3:26: mcp.openai.apiKey.keyCommand: an empty list"},
      Case{"{keyCommand: [pass, {a: b}]}", "c.yaml:3:33: mcp.openai.apiKey.keyCommand[1]: expected a string, got a map"},
      Case{"{keyCommand: [\"\", x]}", "c.yaml:3:27: mcp.openai.apiKey.keyCommand[0]: the program name is empty"},
      Case{"{keyFile: [a]}", "c.yaml:3:23: mcp.openai.apiKey.keyFile: expected a string (the path of a file holding "
                             "the key), got a list"},
      Case{"{keyFile: ~/k}", "c.yaml:3:23: mcp.openai.apiKey.keyFile: starts with ~/ but HOME is not set"},
      Case{"{keyfile: /k}", "unknown field \"keyfile\" — did you mean \"keyFile\"?"});
  auto config = ParseConfigText("mcp:\n  openai:\n    apiKey: " + c.key_yaml + "\n", "c.yaml", Env({}));
  INFO(c.key_yaml);
  REQUIRE_FALSE(config.has_value());
  CHECK_THAT(config.error().message, Catch::Contains(c.want));
}

TEST_CASE("with key commands turned off, none runs and the key is disabled with that reason", "[unit][config]") {
  TempDir dir;
  const std::string marker = dir.path() + "/ran";
  SetKeyCommandsEnabled(false);
  auto r = RunKeyCommand({"sh", "-c", "touch " + marker + "; echo " + kSecret});
  SetKeyCommandsEnabled(true);
  CHECK_THAT(ErrorOf(r), Catch::Contains("not run: key commands are turned off"));
  CHECK_FALSE(std::filesystem::exists(marker));
}

}  // namespace
}  // namespace kpm::server
