#include "server/stdio_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

namespace kpm::server {
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
          "[unit][server]") {
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
          "[unit][server]") {
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

TEST_CASE("a line exactly at the limit is accepted", "[unit][server]") {
  Pipes pipes;
  StdioTransport t({pipes.in[0], pipes.out[1], 10, nullptr});
  REQUIRE(pipes.Write(std::string(10, 'a') + "\n"));
  pipes.CloseInput();
  std::string line;
  REQUIRE(t.ReadLine(line) == Transport::ReadStatus::kLine);
  CHECK(line.size() == 10);
}

TEST_CASE("written lines end in a newline and pass through the output filter",
          "[unit][server]") {
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

TEST_CASE("concurrent writers never interleave their lines", "[unit][server]") {
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

TEST_CASE("Interrupt unblocks a read that is waiting for input", "[unit][server]") {
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

}  // namespace
}  // namespace kpm::server
