#include "server/signals.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <future>

#include <catch2/catch.hpp>

#include "mcp/mcp_server.h"
#include "tests/support/pipe_client.h"

namespace kpm::server {
namespace {

using namespace std::chrono_literals;

TEST_CASE("SIGTERM reaches the watcher's callback instead of killing the process",
          "[unit][server]") {
  std::promise<int> got;
  auto future = got.get_future();
  {
    bool first = true;
    SignalWatcher watcher([&](int signo) {
      if (first) got.set_value(signo);
      first = false;
    });
    // Process-directed: every thread of this test blocks it now, so only the watcher
    // (through sigtimedwait) can take it.
    REQUIRE(::kill(::getpid(), SIGTERM) == 0);
    REQUIRE(future.wait_for(10s) == std::future_status::ready);
    CHECK(future.get() == SIGTERM);
  }
}

TEST_CASE("SIGPIPE is ignored once the watcher is installed", "[unit][server]") {
  IgnoreSigpipe();
  struct sigaction current = {};
  REQUIRE(sigaction(SIGPIPE, nullptr, &current) == 0);
  CHECK(current.sa_handler == SIG_IGN);
}

TEST_CASE("a SIGTERM makes a running server return from Run", "[unit][server]") {
  kpm::testing::PipeClient client;
  mcp::ToolRegistry registry;
  mcp::StdioTransport transport(client.server_in_fd(), client.server_out_fd());
  mcp::McpServer server({}, registry, transport);
  ShutdownOnSignals shutdown(server);
  auto run = std::async(std::launch::async, [&] { return server.Run(); });
  REQUIRE(client.Request(1, "ping"));
  REQUIRE(client.WaitForReply(1).has_value());  // Run is serving
  REQUIRE(::kill(::getpid(), SIGTERM) == 0);
  const bool returned = run.wait_for(10s) == std::future_status::ready;
  if (!returned) {
    server.Stop();
    run.wait();
  }
  REQUIRE(returned);
  CHECK(run.get() == 0);
}

}  // namespace
}  // namespace kpm::server
