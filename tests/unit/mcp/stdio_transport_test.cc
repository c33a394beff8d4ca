#include "mcp/stdio_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

namespace kpm::mcp {
namespace {

using namespace std::chrono_literals;

/// Two pipes: the test writes input and reads output; the transport gets the other ends.
struct Pipes {
  int in[2];
  int out[2];
  Pipes() {
    REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  }
  ~Pipes() {
    for (int fd : {in[0], in[1], out[0], out[1]}) {
      if (fd >= 0) ::close(fd);
    }
  }
  /// No Catch2 macros here: it is also called from writer threads.
  bool Write(const std::string& s) const {
    std::size_t done = 0;
    while (done < s.size()) {
      const ssize_t n = ::write(in[1], s.data() + done, s.size() - done);
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }
  void CloseInput() {
    ::close(in[1]);
    in[1] = -1;
  }
  /// Reads what the transport wrote, waiting at most 5 s for the first byte.
  std::string ReadOutput() const {
    pollfd p = {out[0], POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return {};
    char buf[4096];
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  }
};

TEST_CASE("lines are read one at a time, with CRLF and blank lines handled",
          "[unit][mcp]") {
  Pipes pipes;
  StdioTransport t({pipes.in[0], pipes.out[1], 1024, nullptr});
  REQUIRE(pipes.Write("first\nsecond\r\n\n   \nthird"));
  pipes.CloseInput();
  std::string line;
  REQUIRE(t.ReadLine(line) == Transport::ReadStatus::kLine);
  CHECK(line == "first");
  REQUIRE(t.ReadLine(line) == Transport::ReadStatus::kLine);
  CHECK(line == "second");
  REQUIRE(t.ReadLine(line) == Transport::ReadStatus::kLine);
  CHECK(line == "third");  // a last line without its newline still counts
  CHECK(t.ReadLine(line) == Transport::ReadStatus::kClosed);
  CHECK(t.ReadLine(line) == Transport::ReadStatus::kClosed);
}

TEST_CASE("an over-long line is reported once and the next line still comes through",
          "[unit][mcp]") {
  Pipes pipes;
  StdioTransport t({pipes.in[0], pipes.out[1], 100, nullptr});
  // Written from a thread: the long line is bigger than a pipe buffer.
  std::thread writer([&] {
    pipes.Write(std::string(300000, 'x') + "\nok\n" + std::string(101, 'y') + "\nlast\n");
    pipes.CloseInput();
  });
  std::string line;
  CHECK(t.ReadLine(line) == Transport::ReadStatus::kTooLong);
  REQUIRE(t.ReadLine(line) == Transport::ReadStatus::kLine);
  CHECK(line == "ok");
  CHECK(t.ReadLine(line) == Transport::ReadStatus::kTooLong);
  REQUIRE(t.ReadLine(line) == Transport::ReadStatus::kLine);
  CHECK(line == "last");
  CHECK(t.ReadLine(line) == Transport::ReadStatus::kClosed);
  writer.join();
}

TEST_CASE("a line exactly at the limit is accepted", "[unit][mcp]") {
  Pipes pipes;
  StdioTransport t({pipes.in[0], pipes.out[1], 10, nullptr});
  REQUIRE(pipes.Write(std::string(10, 'a') + "\n"));
  pipes.CloseInput();
  std::string line;
  REQUIRE(t.ReadLine(line) == Transport::ReadStatus::kLine);
  CHECK(line.size() == 10);
}

TEST_CASE("written lines end in a newline and pass through the output filter",
          "[unit][mcp]") {
  Pipes pipes;
  StdioTransportOptions options;
  options.in_fd = pipes.in[0];
  options.out_fd = pipes.out[1];
  options.output_filter = [](std::string s) {
    for (auto pos = s.find("SECRET"); pos != std::string::npos; pos = s.find("SECRET")) {
      s.replace(pos, 6, "sk-…");
    }
    return s;
  };
  StdioTransport t(options);
  REQUIRE(t.WriteLine(R"({"text":"key SECRET here"})"));
  CHECK(pipes.ReadOutput() == "{\"text\":\"key sk-… here\"}\n");
}

TEST_CASE("concurrent writers never interleave their lines", "[unit][mcp]") {
  Pipes pipes;
  StdioTransport t({pipes.in[0], pipes.out[1], 1024, nullptr});
  std::string collected;
  auto reader = std::async(std::launch::async, [&] {
    std::string all;
    while (all.size() < 2 * 200 * 1001) {
      std::string chunk = pipes.ReadOutput();
      if (chunk.empty()) break;
      all += chunk;
    }
    return all;
  });
  auto writer = [&](char c) {
    for (int i = 0; i < 200; ++i) t.WriteLine(std::string(1000, c));
  };
  std::thread a(writer, 'a');
  std::thread b(writer, 'b');
  a.join();
  b.join();
  REQUIRE(reader.wait_for(10s) == std::future_status::ready);
  collected = reader.get();
  REQUIRE(collected.size() == 2 * 200 * 1001);
  for (std::size_t pos = 0; pos < collected.size(); pos += 1001) {
    const std::string line = collected.substr(pos, 1000);
    CHECK(line.find_first_not_of(line[0]) == std::string::npos);
    CHECK(collected[pos + 1000] == '\n');
  }
}

TEST_CASE("Interrupt unblocks a read that is waiting for input", "[unit][mcp]") {
  Pipes pipes;
  StdioTransport t({pipes.in[0], pipes.out[1], 1024, nullptr});
  auto read = std::async(std::launch::async, [&] {
    std::string line;
    return t.ReadLine(line);
  });
  t.Interrupt();
  REQUIRE(read.wait_for(10s) == std::future_status::ready);
  CHECK(read.get() == Transport::ReadStatus::kClosed);
}

TEST_CASE("an over-long line hands back its head and tail, so that its id can be found", "[unit][mcp]") {
  Pipes pipes;
  StdioTransport t({pipes.in[0], pipes.out[1], 100, nullptr});
  const std::string start = R"({"jsonrpc":"2.0","id":41,"method":"ping","params":{"pad":")";
  std::thread writer([&] {
    // One line past the read buffer (seen before its '\n'), one seen whole at once.
    pipes.Write(start + std::string(300000, 'x') + "\"}}\n" + start + std::string(60, 'y') + "\"}}\nok\n");
    pipes.CloseInput();
  });
  std::string line;
  REQUIRE(t.ReadLine(line) == Transport::ReadStatus::kTooLong);
  // Its first and its last kIdScanBytes, joined by a '\n'.
  REQUIRE(line.size() == 2 * protocol::kIdScanBytes + 1);
  CHECK(line.rfind(start, 0) == 0);
  CHECK(line[protocol::kIdScanBytes] == '\n');
  CHECK(line.substr(protocol::kIdScanBytes + 1) == std::string(protocol::kIdScanBytes - 3, 'x') + "\"}}");
  // A line seen whole at once: head and tail are the line itself.
  const std::string short_one = start + std::string(60, 'y') + "\"}}";
  REQUIRE(t.ReadLine(line) == Transport::ReadStatus::kTooLong);
  CHECK(line == short_one + "\n" + short_one);
  REQUIRE(t.ReadLine(line) == Transport::ReadStatus::kLine);
  CHECK(line == "ok");
  writer.join();
}

TEST_CASE("a NUL byte inside a line is passed on, not taken for its end", "[unit][mcp]") {
  Pipes pipes;
  StdioTransport t({pipes.in[0], pipes.out[1], 1024, nullptr});
  REQUIRE(pipes.Write(std::string("a\0b\nnext\n", 9)));
  pipes.CloseInput();
  std::string line;
  REQUIRE(t.ReadLine(line) == Transport::ReadStatus::kLine);
  CHECK(line == std::string("a\0b", 3));
  REQUIRE(t.ReadLine(line) == Transport::ReadStatus::kLine);
  CHECK(line == "next");
}

/// Bytes waiting in a pipe.
int Unread(int fd) {
  int n = 0;
  return ::ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

TEST_CASE("after Interrupt a write the client does not read gives up instead of blocking",
          "[unit][mcp]") {
  Pipes pipes;
  // The smallest pipe there is (one page), so one line fills it.
  const int capacity = ::fcntl(pipes.out[0], F_SETPIPE_SZ, 4096);
  REQUIRE(capacity > 0);
  StdioTransportOptions options{pipes.in[0], pipes.out[1], 1024, nullptr};
  options.stop_write_timeout = 100ms;
  StdioTransport t(options);
  auto write = std::async(std::launch::async, [&] { return t.WriteLine(std::string(4 * capacity, 'x')); });
  // Wait until the pipe is full: the writer now waits for a client that never reads.
  for (int i = 0; i < 1000 && Unread(pipes.out[0]) < capacity; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(Unread(pipes.out[0]) == capacity);
  CHECK(write.wait_for(50ms) == std::future_status::timeout);  // before Interrupt it waits
  t.Interrupt();
  const bool returned = write.wait_for(10s) == std::future_status::ready;
  if (!returned) {  // the old blocking write(): drain so the test fails instead of hanging
    while (write.wait_for(10ms) != std::future_status::ready) pipes.ReadOutput();
  }
  REQUIRE(returned);
  CHECK_FALSE(write.get());
  // Abandoned: later writes fail at once rather than waiting again.
  CHECK_FALSE(t.WriteLine("next"));
}

TEST_CASE("after Interrupt a client that reads still gets every line", "[unit][mcp]") {
  Pipes pipes;
  StdioTransport t(pipes.in[0], pipes.out[1], 1024);  // main's constructor: the default grace
  t.Interrupt();
  REQUIRE(t.WriteLine("a reply in flight"));
  CHECK(pipes.ReadOutput() == "a reply in flight\n");
  // A line bigger than the pipe, read as it is written.
  const std::string big(200000, 'z');
  auto reader = std::async(std::launch::async, [&] {
    std::string all;
    while (all.size() < big.size() + 1) {
      std::string chunk = pipes.ReadOutput();
      if (chunk.empty()) break;
      all += chunk;
    }
    return all;
  });
  CHECK(t.WriteLine(big));
  REQUIRE(reader.wait_for(10s) == std::future_status::ready);
  CHECK(reader.get() == big + "\n");
}

TEST_CASE("a write to a closed output fails", "[unit][mcp]") {
  Pipes pipes;
  StdioTransport t({pipes.in[0], pipes.out[1], 1024, nullptr});
  ::signal(SIGPIPE, SIG_IGN);  // as server::IgnoreSigpipe() does for the binary
  ::close(pipes.out[0]);
  pipes.out[0] = -1;
  CHECK_FALSE(t.WriteLine("nobody reads this"));  // EPIPE
}

}  // namespace
}  // namespace kpm::mcp
