#include "tests/support/stdio_driver.h"

#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

namespace kpm::testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::unique_ptr<StdioProcess> SpawnOrFail(SpawnOptions options) {
  auto p = StdioProcess::Spawn(options);
  if (!p.has_value()) FAIL("spawn failed: " << p.error().message);
  return std::move(p).value();
}

std::unique_ptr<StdioProcess> Sh(const std::string& script) {
  return SpawnOrFail({{"/bin/sh", "-c", script}, {}, {}});
}

TEST_CASE("a line written to cat comes back and EOF on stdin ends it with 0",
          "[unit][support]") {
  auto cat = SpawnOrFail({{"/bin/cat"}, {}, {}});
  REQUIRE(cat->WriteLine("hello"));
  REQUIRE(cat->WriteLine("{\"a\":1}"));
  CHECK(cat->ReadLine(milliseconds(5000)) == std::optional<std::string>("hello"));
  CHECK(cat->ReadLine(milliseconds(5000)) == std::optional<std::string>("{\"a\":1}"));
  cat->CloseStdin();
  CHECK(cat->WaitExit(milliseconds(5000)) == std::optional<int>(0));
  CHECK_FALSE(cat->ReadLine(milliseconds(1000)).has_value());
  CHECK(cat->StdoutDone());
  CHECK(cat->StdoutSoFar() == "hello\n{\"a\":1}\n");
  CHECK_FALSE(cat->WriteLine("after close"));
}

TEST_CASE("ReadLine gives up after its timeout when the child is silent", "[unit][support]") {
  auto p = Sh("sleep 5");
  auto start = Clock::now();
  CHECK_FALSE(p->ReadLine(milliseconds(200)).has_value());
  auto took = Clock::now() - start;
  CHECK(took >= milliseconds(190));
  CHECK(took < milliseconds(2000));
  CHECK_FALSE(p->StdoutDone());
  CHECK_FALSE(p->WaitExit(milliseconds(50)).has_value());
}

TEST_CASE("a last line without newline is returned at EOF", "[unit][support]") {
  auto p = Sh("printf 'one\\ntwo'");
  CHECK(p->ReadLine(milliseconds(5000)) == std::optional<std::string>("one"));
  CHECK(p->ReadLine(milliseconds(5000)) == std::optional<std::string>("two"));
  CHECK_FALSE(p->ReadLine(milliseconds(1000)).has_value());
  CHECK(p->StdoutDone());
}

TEST_CASE("stderr is drained so a chatty child never blocks", "[unit][support]") {
  // 1 MB on stderr is far beyond a pipe's 64 KiB: without the drain thread the child
  // would block before printing "done".
  auto p = Sh("head -c 1000000 /dev/zero | tr '\\0' x >&2; echo done; echo tail >&2");
  CHECK(p->ReadLine(milliseconds(10000)) == std::optional<std::string>("done"));
  CHECK(p->WaitExit(milliseconds(5000)) == std::optional<int>(0));
  std::string err = p->Stderr();
  CHECK(err.size() == 1000000 + 5);
  CHECK(err.substr(err.size() - 5) == "tail\n");
  CHECK(p->WaitForStderr("tail", milliseconds(10)));
  CHECK_FALSE(p->WaitForStderr("absent", milliseconds(10)));
}

TEST_CASE("the child sees env additions and not the unset variables", "[unit][support]") {
  ::setenv("KPM_DRIVER_TEST_DROP", "present", 1);
  ::setenv("KPM_DRIVER_TEST_OVERRIDE", "old", 1);
  auto p = SpawnOrFail({{"/bin/sh", "-c",
                         "echo \"$KPM_DRIVER_TEST_ADD|${KPM_DRIVER_TEST_DROP-unset}|"
                         "$KPM_DRIVER_TEST_OVERRIDE\""},
                        {{"KPM_DRIVER_TEST_ADD", "added"}, {"KPM_DRIVER_TEST_OVERRIDE", "new"}},
                        {"KPM_DRIVER_TEST_DROP"}});
  CHECK(p->ReadLine(milliseconds(5000)) == std::optional<std::string>("added|unset|new"));
  ::unsetenv("KPM_DRIVER_TEST_DROP");
  ::unsetenv("KPM_DRIVER_TEST_OVERRIDE");
}

TEST_CASE("exit codes and signals are reported", "[unit][support]") {
  SECTION("exit code") {
    auto p = Sh("exit 3");
    CHECK(p->WaitExit(milliseconds(5000)) == std::optional<int>(3));
    CHECK(p->WaitExit(milliseconds(0)) == std::optional<int>(3));
    CHECK_FALSE(p->Signal(SIGTERM));
  }
  SECTION("SIGTERM is 128 + 15") {
    auto p = Sh("exec sleep 30");
    REQUIRE(p->Signal(SIGTERM));
    CHECK(p->WaitExit(milliseconds(5000)) == std::optional<int>(128 + SIGTERM));
  }
  SECTION("Kill reaps at once") {
    auto p = Sh("exec sleep 30");
    p->Kill();
    CHECK(p->WaitExit(milliseconds(0)) == std::optional<int>(128 + SIGKILL));
  }
  SECTION("the destructor kills a running child") {
    int pid = 0;
    {
      auto p = Sh("exec sleep 30");
      pid = p->pid();
    }
    CHECK(::kill(pid, 0) != 0);
  }
}

TEST_CASE("writing to a child that is gone fails instead of raising SIGPIPE",
          "[unit][support]") {
  auto p = Sh("exec 0<&-; exit 0");
  REQUIRE(p->WaitExit(milliseconds(5000)) == std::optional<int>(0));
  CHECK_FALSE(p->WriteLine("nobody reads this"));
}

TEST_CASE("spawning a missing program is an error and not a crash", "[unit][support]") {
  auto p = StdioProcess::Spawn({{"/nonexistent/kpm-no-such-binary"}, {}, {}});
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().message.find("/nonexistent/kpm-no-such-binary") != std::string::npos);
  CHECK_FALSE(StdioProcess::Spawn({}).has_value());
}

TEST_CASE("McpSession matches replies by id and records notifications and bad lines",
          "[unit][support]") {
  // A stand-in server: waits for two requests, then answers them out of order with a
  // notification and a broken line in between.
  auto p = Sh(
      "read a; read b; "
      "echo '{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}'; "
      "echo '{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"second\":true}}'; "
      "echo 'not json'; "
      "echo '{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"first\":true}}'; "
      "echo '{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"x\"}}'; "
      "read c");
  McpSession session(*p);
  auto id1 = session.Send("ping");
  auto id2 = session.Send("tools/list", {{"cursor", "abc"}});
  REQUIRE(id1 == std::optional<int64_t>(1));
  REQUIRE(id2 == std::optional<int64_t>(2));

  auto r1 = session.AwaitReply(*id1, milliseconds(5000));
  REQUIRE(r1.has_value());
  CHECK((*r1)["result"]["first"] == true);
  auto r2 = session.AwaitReply(*id2, milliseconds(10));  // already read on the way
  REQUIRE(r2.has_value());
  CHECK((*r2)["result"]["second"] == true);
  auto rnull = session.AwaitReply(nullptr, milliseconds(5000));
  REQUIRE(rnull.has_value());
  CHECK((*rnull)["error"]["code"] == -32700);

  REQUIRE(session.notifications().size() == 1);
  CHECK(session.notifications()[0]["method"] == "notifications/progress");
  REQUIRE(session.bad_lines().size() == 1);
  CHECK(session.bad_lines()[0].rfind("not json", 0) == 0);
  CHECK(session.lines().size() == 5);

  auto start = Clock::now();
  CHECK_FALSE(session.AwaitReply(99, milliseconds(200)).has_value());
  CHECK(Clock::now() - start < milliseconds(2000));
  session.Notify("notifications/initialized");
  CHECK(p->WaitExit(milliseconds(5000)) == std::optional<int>(0));
}

TEST_CASE("JsonRpcShapeError accepts JSON-RPC 2.0 messages and names what is wrong",
          "[unit][support]") {
  struct Case {
    const char* json;
    bool ok;
  };
  const Case cases[] = {
      {R"({"jsonrpc":"2.0","id":1,"result":{}})", true},
      {R"({"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"no"}})", true},
      {R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}})", true},
      {R"({"jsonrpc":"2.0","method":"notifications/message","params":{}})", true},
      {R"({"jsonrpc":"2.0","id":7,"method":"roots/list"})", true},
      {R"([1,2])", false},
      {R"({"id":1,"result":{}})", false},
      {R"({"jsonrpc":"1.0","id":1,"result":{}})", false},
      {R"({"jsonrpc":"2.0","id":1})", false},
      {R"({"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}})", false},
      {R"({"jsonrpc":"2.0","result":{}})", false},
      {R"({"jsonrpc":"2.0","id":null,"result":{}})", false},
      {R"({"jsonrpc":"2.0","id":1.5,"result":{}})", false},
      {R"({"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}})", false},
      {R"({"jsonrpc":"2.0","id":1,"error":{"code":1}})", false},
      {R"({"jsonrpc":"2.0","id":1,"result":{},"extra":1})", false},
      {R"({"jsonrpc":"2.0","method":3})", false},
      {R"({"jsonrpc":"2.0","method":"m","params":"s"})", false},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    auto why = JsonRpcShapeError(Json::parse(c.json));
    CHECK(why.has_value() == !c.ok);
  }
}

TEST_CASE("TempDir holds files and is removed afterwards", "[unit][support]") {
  std::string dir;
  {
    TempDir tmp;
    REQUIRE_FALSE(tmp.path().empty());
    dir = tmp.path();
    std::string file = tmp.WriteFile("config.yaml", "a: 1\n");
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    CHECK(line == "a: 1");
  }
  CHECK_FALSE(std::filesystem::exists(dir));
}

}  // namespace
}  // namespace kpm::testing
