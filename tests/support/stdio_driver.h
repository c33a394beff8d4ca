#pragma once
/// Drives a child process over its stdio, for end-to-end tests of the built binary:
/// StdioProcess spawns it with three pipes, McpSession speaks line-delimited JSON-RPC
/// to it. Every read takes a timeout so a hung child fails the test instead of hanging it.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kpm::testing {

using Json = nlohmann::json;
using std::chrono::milliseconds;

/// How to start a child. `argv[0]` is a path (no PATH search). The child's environment
/// is this process's, minus `unset_env`, plus `env` (which overrides).
struct SpawnOptions {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::vector<std::string> unset_env;
};

/// One child process with piped stdin, stdout and stderr.
///
/// stdout is read on demand by ReadLine (poll-based, with a timeout); stderr is drained
/// continuously by a background thread so the child never blocks on a full pipe.
/// Not thread-safe apart from Stderr(), which may be called from any thread.
/// The destructor kills (SIGKILL) and reaps a child that is still running.
class StdioProcess {
 public:
  /// Starts the child. Errors (bad path, pipe failure) come back as kIo.
  static Result<std::unique_ptr<StdioProcess>> Spawn(const SpawnOptions& options);

  StdioProcess(const StdioProcess&) = delete;
  StdioProcess& operator=(const StdioProcess&) = delete;
  ~StdioProcess();

  int pid() const { return pid_; }

  /// Writes `line` plus '\n' to the child's stdin. False when stdin is closed, the
  /// child is gone (EPIPE; SIGPIPE is ignored in this process) or the pipe stays full
  /// for `timeout`.
  bool WriteLine(std::string_view line, milliseconds timeout = milliseconds(10000));
  /// Writes raw bytes (no newline added); same failure modes as WriteLine.
  bool WriteRaw(std::string_view bytes, milliseconds timeout = milliseconds(10000));

  /// The next stdout line without its '\n' (a trailing '\r' is kept: the protocol
  /// forbids it and tests should see it). nullopt on timeout or when stdout reached
  /// EOF with nothing buffered; a last unterminated line is returned at EOF.
  std::optional<std::string> ReadLine(milliseconds timeout);
  /// True once stdout hit EOF and every buffered byte was handed out.
  bool StdoutDone() const { return stdout_eof_ && stdout_buffer_.empty(); }
  /// Every byte read from stdout so far (including lines already returned).
  const std::string& StdoutSoFar() const { return stdout_all_; }
  /// Reads stdout until EOF or `timeout`, so StdoutSoFar() holds everything.
  void DrainStdout(milliseconds timeout);
  /// Resizes the child's stdout pipe (F_SETPIPE_SZ; the kernel rounds up to a page) and
  /// returns its capacity in bytes, or -1. A small pipe lets a test make the child block
  /// writing its stdout, as a client that stopped reading would.
  int SetStdoutPipeSize(int bytes);
  /// Bytes the child wrote to stdout that are still in the pipe (FIONREAD), or -1.
  int StdoutUnread() const;

  /// Everything the child wrote to stderr so far.
  std::string Stderr() const;
  /// Waits until stderr contains `needle` or `timeout` passes.
  bool WaitForStderr(std::string_view needle, milliseconds timeout) const;

  /// Closes the child's stdin (EOF for it). Idempotent.
  void CloseStdin();

  /// Waits for the child to exit. Returns its exit code, or 128 + signal number when a
  /// signal ended it (the shell's convention); nullopt if still running at `timeout`.
  /// Once reaped, later calls return the same value at once.
  std::optional<int> WaitExit(milliseconds timeout);
  /// Sends `signal` to a child that has not been reaped. False if it was.
  bool Signal(int signal);
  /// SIGKILL and reap. Idempotent.
  void Kill();

 private:
  StdioProcess() = default;
  void StderrLoop();
  /// Reads one chunk of stdout into the buffer. False on timeout or EOF.
  bool FillStdout(std::chrono::steady_clock::time_point deadline);

  int pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  std::optional<int> exit_code_;

  std::string stdout_buffer_;  // read but not yet returned
  std::string stdout_all_;
  bool stdout_eof_ = false;

  mutable std::mutex stderr_mutex_;
  std::string stderr_;
  std::atomic<bool> stop_stderr_{false};
  std::thread stderr_thread_;
};

/// Why `message` is not a JSON-RPC 2.0 message (request, notification, result or
/// error reply), or nullopt when it is one.
std::optional<std::string> JsonRpcShapeError(const Json& message);

/// A line-delimited JSON-RPC client over a StdioProcess (which it does not own).
///
/// Every stdout line read is recorded; lines that do not parse or are not JSON-RPC 2.0
/// are kept in bad_lines() so a test can assert there were none. Replies that arrive
/// while waiting for another id are kept and handed out when asked for.
class McpSession {
 public:
  explicit McpSession(StdioProcess& process) : process_(process) {}

  /// Sends a request with the next integer id (1, 2, ...) and returns that id.
  /// `params` null means none. Returns nullopt when the write failed.
  std::optional<int64_t> Send(std::string_view method, const Json& params = nullptr);
  /// Sends a notification (no id).
  bool Notify(std::string_view method, const Json& params = nullptr);
  /// Sends one raw line as is (malformed input tests).
  bool SendRaw(std::string_view line) { return process_.WriteLine(line); }

  /// Reads lines until the reply whose id equals `id` arrives (or was already read).
  /// nullopt on timeout or EOF.
  std::optional<Json> AwaitReply(const Json& id, milliseconds timeout = milliseconds(10000));
  /// Send() then AwaitReply().
  std::optional<Json> Request(std::string_view method, const Json& params = nullptr,
                              milliseconds timeout = milliseconds(10000));
  /// The `initialize` request with `protocol_version`, then notifications/initialized.
  /// Returns the initialize reply.
  std::optional<Json> Initialize(std::string_view protocol_version = "2025-06-18",
                                 milliseconds timeout = milliseconds(10000));
  /// `tools/call` with `name` and `arguments`; returns the whole reply.
  std::optional<Json> CallTool(std::string_view name, const Json& arguments = Json::object(),
                               milliseconds timeout = milliseconds(10000));

  /// Reads one message (a reply is stored for AwaitReply as well). nullopt on timeout/EOF.
  std::optional<Json> ReadMessage(milliseconds timeout);
  /// Reads until stdout EOF or `timeout`, recording everything.
  void DrainUntilEof(milliseconds timeout);

  /// Messages without an id that the server sent (notifications), in order.
  const std::vector<Json>& notifications() const { return notifications_; }
  /// Requests the server sent to us (method and id), in order.
  const std::vector<Json>& server_requests() const { return server_requests_; }
  /// Every stdout line seen, in order.
  const std::vector<std::string>& lines() const { return lines_; }
  /// "<line>: <why>" for each line that is not a valid JSON-RPC 2.0 message.
  const std::vector<std::string>& bad_lines() const { return bad_lines_; }

 private:
  /// Reads and classifies one line. False on timeout/EOF.
  bool Pump(milliseconds timeout);

  StdioProcess& process_;
  int64_t next_id_ = 1;
  std::map<std::string, Json> replies_;  // by id.dump()
  std::vector<Json> notifications_;
  std::vector<Json> server_requests_;
  std::vector<std::string> lines_;
  std::vector<std::string> bad_lines_;
};

/// The substrings of a secret that must never be seen anywhere (SPEC §4): the whole
/// key and its middle 12 characters (a partial echo or a re-encoding of the edges
/// still shows them). Keys shorter than 12 characters give just themselves.
std::vector<std::string> SecretNeedles(std::string_view key);
/// The first needle of any of `keys` that occurs in `text`, or nullopt when none does.
std::optional<std::string> FindSecret(std::string_view text, const std::vector<std::string>& keys);

/// Options to start `binary` as an MCP server with `args`, in a hermetic environment:
/// HOME, XDG_CONFIG_HOME and XDG_STATE_HOME point into `home` (so no real config or
/// state file is found or written), and
/// KEYPOOL_CONFIG / KEYPOOL_LOG_LEVEL plus `unset_env` are removed; `env` is added.
SpawnOptions ServerOptions(const std::string& binary, const std::vector<std::string>& args,
                           const std::string& home,
                           const std::map<std::string, std::string>& env = {},
                           const std::vector<std::string>& unset_env = {});

/// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  /// Writes `contents` to path()/name and returns the full path.
  std::string WriteFile(std::string_view name, std::string_view contents) const;

 private:
  std::string path_;
};

}  // namespace kpm::testing
