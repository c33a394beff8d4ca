#include "tests/support/redis_server.h"
#include "tests/support/child_spawn.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

extern char** environ;

namespace kpm::testing {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

Error IoError(std::string message) { return MakeError(ErrorKind::kIo, std::move(message)); }

bool IsExecutable(const std::string& path) { return !path.empty() && ::access(path.c_str(), X_OK) == 0; }

std::string FindRedisServer() {
  if (const char* env = std::getenv("KPM_REDIS_SERVER"); env != nullptr && IsExecutable(env)) return env;
  if (IsExecutable("/usr/bin/redis-server")) return "/usr/bin/redis-server";
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (!dir.empty() && IsExecutable(dir + "/redis-server")) return dir + "/redis-server";
    }
  }
  return "";
}

/// A port that was free a moment ago (bind port 0, read it, close).
int PickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::string Encode(const std::vector<std::string>& args) {
  std::string out = std::string("*").append(std::to_string(args.size())).append("\r\n");
  for (const auto& a : args) out.append("$").append(std::to_string(a.size())).append("\r\n").append(a).append("\r\n");
  return out;
}

/// Reads RESP from a blocking socket (with SO_RCVTIMEO set).
class RespReader {
 public:
  explicit RespReader(int fd) : fd_(fd) {}

  Result<RespReply> Read() {
    auto line = Line();
    if (!line) return line.error();
    if (line->empty()) return IoError("empty RESP line");
    RespReply r;
    std::string rest = line->substr(1);
    switch ((*line)[0]) {
      case '+':
        r.type = RespReply::Type::kStatus, r.text = rest;
        return r;
      case '-':
        r.type = RespReply::Type::kError, r.text = rest;
        return r;
      case ':': {
        r.type = RespReply::Type::kInteger;
        if (!Number(rest, &r.integer)) return IoError("bad RESP integer");
        return r;
      }
      case '$': {
        int64_t n = 0;
        if (!Number(rest, &n)) return IoError("bad RESP bulk length");
        if (n < 0) return r;  // nil
        auto bytes = Bytes(static_cast<size_t>(n) + 2);
        if (!bytes) return bytes.error();
        r.type = RespReply::Type::kString;
        r.text = bytes->substr(0, static_cast<size_t>(n));
        return r;
      }
      case '*': {
        int64_t n = 0;
        if (!Number(rest, &n)) return IoError("bad RESP array length");
        if (n < 0) return r;  // nil array (EXEC after a failed WATCH)
        r.type = RespReply::Type::kArray;
        for (int64_t i = 0; i < n; ++i) {
          auto element = Read();
          if (!element) return element.error();
          r.elements.push_back(std::move(*element));
        }
        return r;
      }
      default:
        return IoError("bad RESP type byte");
    }
  }

 private:
  static bool Number(const std::string& s, int64_t* out) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && end == s.data() + s.size();
  }

  bool Fill() {
    char chunk[4096];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  Result<std::string> Line() {
    size_t end;
    while ((end = buffer_.find("\r\n")) == std::string::npos) {
      if (!Fill()) return IoError("redis closed the connection or did not answer");
    }
    std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + 2);
    return line;
  }

  Result<std::string> Bytes(size_t n) {
    while (buffer_.size() < n) {
      if (!Fill()) return IoError("redis closed the connection or did not answer");
    }
    std::string bytes = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return bytes;
  }

  int fd_;
  std::string buffer_;
};

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

RedisServer::RedisServer(std::string password) : password_(std::move(password)) {}

RedisServer::~RedisServer() {
  Stop();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

std::string RedisServer::url() const {
  std::string auth = password_.empty() ? "" : ":" + password_ + "@";
  return "redis://" + auth + "127.0.0.1:" + std::to_string(port_) + "/0";
}

Status RedisServer::Start() {
  if (running()) return Ok{};
  if (executable_.empty()) executable_ = FindRedisServer();
  if (executable_.empty()) {
    return MakeError(ErrorKind::kNotFound,
                     "redis-server not found (looked at $KPM_REDIS_SERVER, /usr/bin/redis-server and $PATH): "
                     "install the Debian package redis-server; the redis tests need a real server");
  }
  if (dir_.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/kpm-redis-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) return IoError("mkdtemp: " + std::string(std::strerror(errno)));
    dir_ = pattern;
  }
  if (port_ != 0) return SpawnAndWait();  // a restart keeps its port
  Status last = IoError("no free port found");
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = PickFreePort();
    if (port_ == 0) continue;
    last = SpawnAndWait();
    if (last) return last;
  }
  port_ = 0;
  return last;
}

Status RedisServer::SpawnAndWait() {
  const std::string log = dir_ + "/redis.log";
  std::vector<std::string> args = {
      executable_, "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
      "--dir",     dir_,     "--daemonize",         "no",     "--logfile", ""};
  if (!password_.empty()) args.insert(args.end(), {"--requirepass", password_});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_t attr;
  InitChildSpawnAttr(&attr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, executable_.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return IoError("posix_spawn " + executable_ + ": " + std::strerror(rc));
  pid_ = pid;

  auto deadline = SteadyClock::now() + 10s;
  while (SteadyClock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return IoError("redis-server on port " + std::to_string(port_) + " exited at start:\n" + LogTail());
    }
    // INFO, not just PING: the port was free a moment ago, but another server could have
    // taken it since (ours then exits); only our own process id counts.
    auto info = Command({"INFO", "server"});
    if (info && info->type == RespReply::Type::kString) {
      if (info->text.find("process_id:" + std::to_string(pid_) + "\r\n") != std::string::npos) return Ok{};
    }
    std::this_thread::sleep_for(10ms);
  }
  Stop();
  return IoError("redis-server on port " + std::to_string(port_) + " did not answer PING within 10 s:\n" + LogTail());
}

void RedisServer::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  auto deadline = SteadyClock::now() + 10s;
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (SteadyClock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  pid_ = -1;
}

std::string RedisServer::LogTail() const {
  std::ifstream in(dir_ + "/redis.log", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > 2000) text = text.substr(text.size() - 2000);
  return text;
}

Result<RespReply> RedisServer::Command(const std::vector<std::string>& args) const {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return IoError("socket: " + std::string(std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return IoError("connect 127.0.0.1:" + std::to_string(port_) + ": " + std::strerror(errno));
  }
  RespReader reader(fd);
  if (!password_.empty()) {
    if (!SendAll(fd, Encode({"AUTH", password_}))) return IoError("send failed");
    auto auth = reader.Read();
    if (!auth) return auth.error();
    if (auth->type != RespReply::Type::kStatus) return IoError("AUTH refused");
  }
  if (!SendAll(fd, Encode(args))) return IoError("send failed");
  return reader.Read();
}

}  // namespace kpm::testing
