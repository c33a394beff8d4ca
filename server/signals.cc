#include "server/signals.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include <spdlog/spdlog.h>

#include "mcp/mcp_server.h"

namespace kpm::server {
namespace {

// The one process-wide state a signal handler needs: the self-pipe's write end.
// (STYLE.md allows no globals but the logger; a handler cannot reach anything else.)
std::atomic<int> g_signal_write_fd{-1};  // lock-free: safe in a handler
struct sigaction g_previous_term = {};
struct sigaction g_previous_int = {};
struct sigaction g_previous_hup = {};

extern "C" void OnStopSignal(int signo) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(signo);
  if (const int fd = g_signal_write_fd.load(); fd >= 0) {
    [[maybe_unused]] ssize_t n = ::write(fd, &byte, 1);
  }
  errno = saved;
}

}  // namespace

void IgnoreSigpipe() {
  struct sigaction sa = {};
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, nullptr);
}

SignalWatcher::SignalWatcher(std::function<void(int)> on_signal)
    : on_signal_(std::move(on_signal)) {
  IgnoreSigpipe();
  int signal_pipe[2] = {-1, -1};
  if (::pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
      ::pipe2(quit_pipe_, O_CLOEXEC) != 0) {
    spdlog::error("cannot create the signal pipes; SIGTERM/SIGINT keep their default action");
    return;
  }
  g_signal_write_fd.store(signal_pipe[1]);
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // reads and writes elsewhere should not see EINTR
  sigaction(SIGTERM, &sa, &g_previous_term);
  sigaction(SIGINT, &sa, &g_previous_int);
  sigaction(SIGHUP, &sa, &g_previous_hup);

  const int read_fd = signal_pipe[0];
  const int write_fd = signal_pipe[1];
  thread_ = std::thread([this, read_fd, write_fd] {
    pollfd fds[2] = {{read_fd, POLLIN, 0}, {quit_pipe_[0], POLLIN, 0}};
    for (;;) {
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[1].revents != 0) break;
      unsigned char byte = 0;
      while (::read(read_fd, &byte, 1) == 1) {
        if (on_signal_) on_signal_(byte);
      }
    }
    ::close(read_fd);
    ::close(write_fd);
  });
}

SignalWatcher::~SignalWatcher() {
  if (thread_.joinable()) {
    sigaction(SIGTERM, &g_previous_term, nullptr);
    sigaction(SIGINT, &g_previous_int, nullptr);
    sigaction(SIGHUP, &g_previous_hup, nullptr);
    g_signal_write_fd.store(-1);
    const char byte = 0;
    [[maybe_unused]] ssize_t n = ::write(quit_pipe_[1], &byte, 1);
    thread_.join();
  }
  for (int fd : quit_pipe_) {
    if (fd >= 0) ::close(fd);
  }
}

ShutdownOnSignals::ShutdownOnSignals(mcp::McpServer& server, std::function<void()> on_hangup)
    : on_hangup_(std::move(on_hangup)), watcher_([this, &server](int signo) {
        if (signo == SIGHUP) {
          if (on_hangup_) on_hangup_();
          return;
        }
        if (++count_ == 1) {
          // Stop first: if stderr is a full pipe too, the log line below may block.
          server.Stop();
          spdlog::info("signal {}: answering calls in flight, then exiting", signo);
          return;
        }
        spdlog::warn("signal {} again: exiting now", signo);
        std::_Exit(128 + signo);
      }) {}

}  // namespace kpm::server
