#include "tests/support/stdio_driver.h"
#include "tests/support/child_spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

extern char** environ;

namespace kpm::testing {
namespace {

using Clock = std::chrono::steady_clock;

/// Milliseconds left until `deadline`, clamped to [0, INT_MAX] for poll().
int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 1 << 30));
}

std::string Errno(std::string_view what) {
  return std::string(what) + ": " + std::strerror(errno);
}

void CloseFd(int& fd) {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

/// A write to a child that died must fail with EPIPE, not kill the test binary.
/// Children get SIGPIPE back at its default (posix_spawnattr_setsigdefault).
void IgnoreSigpipeOnce() {
  static std::once_flag once;
  std::call_once(once, [] { ::signal(SIGPIPE, SIG_IGN); });
}

std::vector<std::string> BuildEnvironment(const SpawnOptions& options) {
  std::set<std::string> drop(options.unset_env.begin(), options.unset_env.end());
  for (const auto& [name, value] : options.env) drop.insert(name);
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string name(entry.substr(0, entry.find('=')));
    if (!drop.count(name)) env.emplace_back(entry);
  }
  for (const auto& [name, value] : options.env) env.push_back(name + "=" + value);
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Result<std::unique_ptr<StdioProcess>> StdioProcess::Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return MakeError(ErrorKind::kInvalidArgument, "empty argv");
  IgnoreSigpipeOnce();

  // O_CLOEXEC everywhere: children spawned concurrently must not inherit each other's
  // pipe ends, or an EOF would never arrive. dup2 onto 0/1/2 clears the flag.
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return MakeError(ErrorKind::kIo, Errno("pipe2"));
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]), ::close(in[1]);
    return MakeError(ErrorKind::kIo, Errno("pipe2"));
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(in[0]), ::close(in[1]), ::close(out[0]), ::close(out[1]);
    return MakeError(ErrorKind::kIo, Errno("pipe2"));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);

  posix_spawnattr_t attr;
  InitChildSpawnAttr(&attr);

  std::vector<std::string> argv_strings = options.argv;
  std::vector<std::string> env_strings = BuildEnvironment(options);
  std::vector<char*> argv = CStrings(argv_strings);
  std::vector<char*> envp = CStrings(env_strings);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(in[1]), ::close(out[0]), ::close(err[0]);
    return MakeError(ErrorKind::kIo,
                     "posix_spawn " + options.argv[0] + ": " + std::strerror(rc));
  }

  std::unique_ptr<StdioProcess> p(new StdioProcess());
  p->pid_ = pid;
  p->stdin_fd_ = in[1];
  p->stdout_fd_ = out[0];
  p->stderr_fd_ = err[0];
  ::fcntl(p->stdin_fd_, F_SETFL, ::fcntl(p->stdin_fd_, F_GETFL) | O_NONBLOCK);
  ::fcntl(p->stdout_fd_, F_SETFL, ::fcntl(p->stdout_fd_, F_GETFL) | O_NONBLOCK);
  ::fcntl(p->stderr_fd_, F_SETFL, ::fcntl(p->stderr_fd_, F_GETFL) | O_NONBLOCK);
  p->stderr_thread_ = std::thread([raw = p.get()] { raw->StderrLoop(); });
  return p;
}

StdioProcess::~StdioProcess() {
  Kill();
  stop_stderr_ = true;
  if (stderr_thread_.joinable()) stderr_thread_.join();
  CloseFd(stdin_fd_);
  CloseFd(stdout_fd_);
  CloseFd(stderr_fd_);
}

void StdioProcess::StderrLoop() {
  char buf[8192];
  while (true) {
    pollfd pfd{stderr_fd_, POLLIN, 0};
    // Wake up now and then to notice stop_stderr_ (a grandchild may hold the pipe).
    int ready = ::poll(&pfd, 1, 50);
    if (ready < 0 && errno != EINTR) break;
    if (ready > 0) {
      ssize_t n = ::read(stderr_fd_, buf, sizeof buf);
      if (n > 0) {
        std::lock_guard<std::mutex> lock(stderr_mutex_);
        stderr_.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) break;  // EOF: every writer is gone
      if (errno != EAGAIN && errno != EINTR) break;
    }
    if (stop_stderr_) break;
  }
  stop_stderr_ = true;
}

std::string StdioProcess::Stderr() const {
  std::lock_guard<std::mutex> lock(stderr_mutex_);
  return stderr_;
}

bool StdioProcess::WaitForStderr(std::string_view needle, milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (Stderr().find(needle) != std::string::npos) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

bool StdioProcess::WriteLine(std::string_view line, milliseconds timeout) {
  std::string data(line);
  data.push_back('\n');
  return WriteRaw(data, timeout);
}

bool StdioProcess::WriteRaw(std::string_view bytes, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!bytes.empty()) {
    if (stdin_fd_ < 0) return false;
    ssize_t n = ::write(stdin_fd_, bytes.data(), bytes.size());
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return false;  // EPIPE: the child closed its stdin
    pollfd pfd{stdin_fd_, POLLOUT, 0};
    int ready = ::poll(&pfd, 1, RemainingMs(deadline));
    if (ready == 0) return false;
    if (ready < 0 && errno != EINTR) return false;
  }
  return true;
}

bool StdioProcess::FillStdout(std::chrono::steady_clock::time_point deadline) {
  while (!stdout_eof_) {
    pollfd pfd{stdout_fd_, POLLIN, 0};
    int ready = ::poll(&pfd, 1, RemainingMs(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    char buf[65536];
    ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
    if (n > 0) {
      stdout_buffer_.append(buf, static_cast<size_t>(n));
      stdout_all_.append(buf, static_cast<size_t>(n));
      return true;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) stdout_eof_ = true;
  }
  return false;
}

std::optional<std::string> StdioProcess::ReadLine(milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    size_t nl = stdout_buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = stdout_buffer_.substr(0, nl);
      stdout_buffer_.erase(0, nl + 1);
      return line;
    }
    if (!FillStdout(deadline)) {
      if (!stdout_eof_ || stdout_buffer_.empty()) return std::nullopt;
      std::string rest;
      rest.swap(stdout_buffer_);
      return rest;
    }
  }
}

void StdioProcess::DrainStdout(milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (FillStdout(deadline)) {
  }
}

void StdioProcess::CloseStdin() { CloseFd(stdin_fd_); }

std::optional<int> StdioProcess::WaitExit(milliseconds timeout) {
  if (exit_code_) return exit_code_;
  auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = DecodeWaitStatus(status);
      break;
    }
    if (r < 0 && errno != EINTR) {
      exit_code_ = -1;  // not our child any more; nothing sensible to report
      break;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(2));
  }
  // Let the stderr thread read what the child wrote last, so Stderr() is complete.
  auto stderr_deadline = Clock::now() + milliseconds(1000);
  while (!stop_stderr_ && Clock::now() < stderr_deadline) {
    std::this_thread::sleep_for(milliseconds(2));
  }
  return exit_code_;
}

int StdioProcess::SetStdoutPipeSize(int bytes) {
  if (stdout_fd_ < 0) return -1;
  return ::fcntl(stdout_fd_, F_SETPIPE_SZ, bytes);
}

int StdioProcess::StdoutUnread() const {
  int n = 0;
  if (stdout_fd_ < 0 || ::ioctl(stdout_fd_, FIONREAD, &n) != 0) return -1;
  return n;
}

bool StdioProcess::Signal(int signal) {
  if (exit_code_ || pid_ <= 0) return false;
  return ::kill(pid_, signal) == 0;
}

void StdioProcess::Kill() {
  if (exit_code_ || pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_code_ = DecodeWaitStatus(status);
}

// --- JSON-RPC ----------------------------------------------------------------

namespace {

// A string or an integer; an integer past 64 bits (which nlohmann can only hold as a
// double) counts, since the server echoes such ids as the client wrote them.
bool IsValidId(const Json& id) {
  if (id.is_string() || id.is_number_integer()) return true;
  if (!id.is_number_float()) return false;
  const double d = id.get<double>();
  return std::trunc(d) == d && std::fabs(d) >= 9223372036854775808.0;  // 2^63
}

}  // namespace

std::optional<std::string> JsonRpcShapeError(const Json& m) {
  if (!m.is_object()) return "not a JSON object";
  auto v = m.find("jsonrpc");
  if (v == m.end() || *v != "2.0") return "jsonrpc is not \"2.0\"";
  if (m.contains("method")) {
    static const std::set<std::string> kAllowed = {"jsonrpc", "method", "params", "id"};
    for (const auto& [k, val] : m.items()) {
      if (!kAllowed.count(k)) return "unexpected member \"" + k + "\" in a request";
    }
    if (!m["method"].is_string()) return "method is not a string";
    if (m.contains("id") && !IsValidId(m["id"])) return "request id is not a string or integer";
    if (m.contains("params") && !m["params"].is_object() && !m["params"].is_array()) {
      return "params is neither object nor array";
    }
    return std::nullopt;
  }
  static const std::set<std::string> kAllowed = {"jsonrpc", "result", "error", "id"};
  for (const auto& [k, val] : m.items()) {
    if (!kAllowed.count(k)) return "unexpected member \"" + k + "\" in a reply";
  }
  if (!m.contains("id")) return "reply without id";
  bool has_result = m.contains("result");
  bool has_error = m.contains("error");
  if (has_result == has_error) return "reply must have exactly one of result and error";
  if (has_result) {
    if (!IsValidId(m["id"])) return "result reply id is not a string or integer";
    return std::nullopt;
  }
  if (!IsValidId(m["id"]) && !m["id"].is_null()) return "error reply id is invalid";
  const Json& e = m["error"];
  if (!e.is_object()) return "error is not an object";
  if (!e.contains("code") || !e["code"].is_number_integer()) return "error.code is not an integer";
  if (!e.contains("message") || !e["message"].is_string()) return "error.message is not a string";
  return std::nullopt;
}

std::optional<int64_t> McpSession::Send(std::string_view method, const Json& params) {
  int64_t id = next_id_++;
  Json m = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) m["params"] = params;
  if (!process_.WriteLine(m.dump())) return std::nullopt;
  return id;
}

bool McpSession::Notify(std::string_view method, const Json& params) {
  Json m = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) m["params"] = params;
  return process_.WriteLine(m.dump());
}

bool McpSession::Pump(milliseconds timeout) {
  auto line = process_.ReadLine(timeout);
  if (!line) return false;
  lines_.push_back(*line);
  Json m = Json::parse(*line, nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded()) {
    bad_lines_.push_back(*line + ": not JSON");
    return true;
  }
  if (auto why = JsonRpcShapeError(m)) {
    bad_lines_.push_back(*line + ": " + *why);
    return true;
  }
  if (m.contains("method")) {
    (m.contains("id") ? server_requests_ : notifications_).push_back(m);
  } else {
    replies_[m["id"].dump()] = m;
  }
  return true;
}

std::optional<Json> McpSession::ReadMessage(milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    size_t before = lines_.size();
    if (!Pump(milliseconds(RemainingMs(deadline)))) return std::nullopt;
    Json m = Json::parse(lines_[before], nullptr, false);
    if (!m.is_discarded()) return m;
  }
}

void McpSession::DrainUntilEof(milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline && Pump(milliseconds(RemainingMs(deadline)))) {
  }
}

std::optional<Json> McpSession::AwaitReply(const Json& id, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  const std::string key = id.dump();
  while (true) {
    auto it = replies_.find(key);
    if (it != replies_.end()) {
      Json reply = std::move(it->second);
      replies_.erase(it);
      return reply;
    }
    if (!Pump(milliseconds(RemainingMs(deadline)))) return std::nullopt;
  }
}

std::optional<Json> McpSession::Request(std::string_view method, const Json& params,
                                        milliseconds timeout) {
  auto id = Send(method, params);
  if (!id) return std::nullopt;
  return AwaitReply(*id, timeout);
}

std::optional<Json> McpSession::Initialize(std::string_view protocol_version,
                                           milliseconds timeout) {
  Json params = {{"protocolVersion", protocol_version},
                 {"capabilities", Json::object()},
                 {"clientInfo", {{"name", "kpm-e2e"}, {"version", "0.0.1"}}}};
  auto reply = Request("initialize", params, timeout);
  if (reply && reply->contains("result")) Notify("notifications/initialized");
  return reply;
}

std::optional<Json> McpSession::CallTool(std::string_view name, const Json& arguments,
                                         milliseconds timeout) {
  return Request("tools/call", {{"name", name}, {"arguments", arguments}}, timeout);
}

// --- Secrets and servers --------------------------------------------------------

std::vector<std::string> SecretNeedles(std::string_view key) {
  std::vector<std::string> needles{std::string(key)};
  constexpr size_t kMiddle = 12;
  if (key.size() > kMiddle) {
    needles.emplace_back(key.substr((key.size() - kMiddle) / 2, kMiddle));
  }
  return needles;
}

std::optional<std::string> FindSecret(std::string_view text, const std::vector<std::string>& keys) {
  for (const auto& key : keys) {
    for (const auto& needle : SecretNeedles(key)) {
      if (!needle.empty() && text.find(needle) != std::string_view::npos) return needle;
    }
  }
  return std::nullopt;
}

SpawnOptions ServerOptions(const std::string& binary, const std::vector<std::string>& args,
                           const std::string& home,
                           const std::map<std::string, std::string>& env,
                           const std::vector<std::string>& unset_env) {
  SpawnOptions options;
  options.argv.push_back(binary);
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.env = env;
  options.env["HOME"] = home;
  options.env["XDG_CONFIG_HOME"] = home + "/.config";
  options.env["XDG_STATE_HOME"] = home + "/.local/state";  // the default sqlite store: one per test
  options.unset_env = unset_env;
  options.unset_env.push_back("KEYPOOL_CONFIG");
  options.unset_env.push_back("KEYPOOL_LOG_LEVEL");
  return options;
}

// --- TempDir -------------------------------------------------------------------

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kpm-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::WriteFile(std::string_view name, std::string_view contents) const {
  std::string full = path_ + "/" + std::string(name);
  std::ofstream out(full, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  return full;
}

}  // namespace kpm::testing
