#pragma once
/// Turning SIGTERM/SIGINT into an orderly McpServer::Stop(), and ignoring SIGPIPE so a
/// closed stdout is a write error, not a death.

#include <functional>
#include <thread>

namespace kpm::mcp {
class McpServer;
}  // namespace kpm::mcp

namespace kpm::server {

/// Ignores SIGPIPE for the whole process. Idempotent.
void IgnoreSigpipe();

/// Installs SIGTERM, SIGINT and SIGHUP handlers that only write the signal number to a
/// self-pipe; a watcher thread reads it and calls `on_signal(signo)` in a normal
/// thread context, so the callback may lock and log. Works whichever thread the kernel
/// delivers the signal to, so it may be created after other threads started. It is
/// called for every such signal (a second Ctrl-C can be handled too). Also ignores
/// SIGPIPE. At most one SignalWatcher may exist at a time (the handler needs one
/// process-wide pipe). The destructor restores the previous handlers and joins.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void(int signo)> on_signal);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  std::function<void(int)> on_signal_;
  int quit_pipe_[2] = {-1, -1};
  std::thread thread_;
};

/// The usual wiring for main: the first SIGTERM/SIGINT calls server.Stop() (Run()
/// then answers what is in flight and returns); a second one exits at once with
/// 128 + signo. SIGHUP calls `on_hangup` (reload the config) and nothing else.
/// `server` must outlive this object.
class ShutdownOnSignals {
 public:
  explicit ShutdownOnSignals(mcp::McpServer& server, std::function<void()> on_hangup = nullptr);

 private:
  int count_ = 0;  // only touched on the watcher thread
  std::function<void()> on_hangup_;
  SignalWatcher watcher_;
};

}  // namespace kpm::server
