#include "server/key_sources.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/redact.h"
#include "common/strings.h"

extern char** environ;

namespace kpm::server {
namespace {

constexpr size_t kMaxKeyFileBytes = 64 * 1024;
constexpr size_t kMaxStdoutBytes = 64 * 1024;  // more is read and dropped (never a key)
constexpr size_t kMaxStderrBytes = 4 * 1024;

constexpr const char* kEllipsisText = "\xE2\x80\xA6";  // "…"

std::atomic<bool> g_commands_enabled{true};

/// A word that cannot be (part of) a key: short, or made of lower-case word characters
/// (file names, store paths, English) with few digits. See ScrubbedHint.
bool IsSafeWord(std::string_view w) {
  if (w.empty()) return false;
  bool visible = std::all_of(w.begin(), w.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
  if (visible && w.size() <= 11) return true;
  if (w.size() > 40) return false;
  size_t digits = 0;
  for (unsigned char c : w) {
    if (c >= '0' && c <= '9') {
      ++digits;
    } else if (!(c >= 'a' && c <= 'z') && std::strchr("-_./:,;()'\"=", c) == nullptr) {
      return false;
    }
  }
  return digits <= 4;
}

std::string FirstLine(std::string_view text) { return std::string(Trim(text.substr(0, text.find('\n')))); }

std::string FormatDuration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

/// Reads what `fd` (non-blocking) has now into `out`, up to `cap` bytes kept; clears
/// `open` at end of file or on an error.
void Drain(int fd, std::string& out, size_t cap, bool& open) {
  char buf[4096];
  while (open) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      size_t keep = std::min(static_cast<size_t>(n), cap - std::min(cap, out.size()));
      out.append(buf, keep);
    } else if (n == 0) {
      open = false;
    } else if (errno == EINTR) {
      continue;
    } else {
      if (errno != EAGAIN && errno != EWOULDBLOCK) open = false;
      return;
    }
  }
}

/// ": <hint>" from the command's stderr, or "".
std::string HintFrom(const std::string& err, const std::string& out) {
  std::vector<std::string> secrets = {FirstLine(out), std::string(Trim(out))};
  std::string hint = ScrubbedHint(err, secrets);
  return hint.empty() ? "" : ": " + hint;
}

struct Child {
  pid_t pid = -1;
  int out = -1;
  int err = -1;
};

/// posix_spawnp with the file actions and attributes of RunKeyCommand; 0 or an errno.
int Spawn(const std::vector<std::string>& argv, Child& child) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return errno;
  if (::pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(out[0]);
    ::close(out[1]);
    return e;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // A group of its own (killed whole on timeout), no inherited signal mask, and default
  // handling of the signals the server ignores or catches (an ignored SIGPIPE survives exec).
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, defaults;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) sigaddset(&defaults, s);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int rc = ::posix_spawnp(&child.pid, argv[0].c_str(), &fa, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(out[0]);
    ::close(err[0]);
    return rc;
  }
  child.out = out[0];
  child.err = err[0];
  for (int fd : {child.out, child.err}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return 0;
}

}  // namespace

void SetKeyCommandsEnabled(bool enabled) { g_commands_enabled = enabled; }

std::string ScrubbedHint(std::string_view text, const std::vector<std::string>& secrets) {
  constexpr size_t kMaxHint = 80;
  std::string_view first;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    first = Trim(text.substr(0, nl));
    if (!first.empty() || nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  // Scrub the whole line before anything is cut or dropped (common/redact.h).
  Scrubber scrubber;
  for (const std::string& s : secrets) {
    if (s.size() >= 12) scrubber.Add(s);
  }
  const std::string line = scrubber.empty() ? std::string(first) : scrubber.Scrub(first);
  std::string hint;
  bool hidden_last = false;
  size_t i = 0;
  while (i < line.size()) {
    size_t b = line.find_first_not_of(" \t\r", i);
    if (b == std::string::npos) break;
    size_t e = line.find_first_of(" \t\r", b);
    if (e == std::string::npos) e = line.size();
    std::string_view word = std::string_view(line).substr(b, e - b);
    i = e;
    bool safe = IsSafeWord(word);
    if (!safe && hidden_last) continue;  // one "…" for a run of hidden words
    std::string piece = safe ? std::string(word) : std::string(kEllipsisText);
    if (hint.size() + 1 + piece.size() > kMaxHint) {
      if (!hidden_last) hint += std::string(hint.empty() ? "" : " ") + kEllipsisText;
      break;
    }
    hint += (hint.empty() ? "" : " ") + piece;
    hidden_last = !safe;
  }
  if (hint == kEllipsisText) return "";  // nothing worth showing
  return hint;
}

std::string DescribeCommand(const std::vector<std::string>& argv) {
  constexpr size_t kMaxShown = 60;
  std::string shown;
  for (const std::string& a : argv) {
    std::string piece = IsSafeWord(a) ? a : std::string(kEllipsisText);
    if (!shown.empty() && shown.size() + 1 + piece.size() > kMaxShown) {
      shown += std::string(" ") + kEllipsisText;
      break;
    }
    shown += (shown.empty() ? "" : " ") + piece;
  }
  return "keyCommand [" + shown + "]";
}

Result<std::string> ResolveKeyFilePath(std::string_view written, std::string_view config_dir, std::string_view home) {
  if (written.empty()) return MakeError(ErrorKind::kConfig, "an empty path");
  if (written == "~" || written.rfind("~/", 0) == 0) {
    if (home.empty()) return MakeError(ErrorKind::kConfig, "starts with ~/ but HOME is not set");
    return std::string(home) + std::string(written.substr(1));
  }
  if (written[0] == '~') {
    return MakeError(ErrorKind::kConfig, "~user paths are not supported: write ~/… or a full path");
  }
  std::filesystem::path p(written);
  if (p.is_absolute() || config_dir.empty()) return p.string();
  return (std::filesystem::path(config_dir) / p).string();
}

Result<std::string> ReadKeyFile(const std::string& path) {
  const std::string what = "keyFile " + path;
  auto fail = [&](const std::string& message) { return MakeError(ErrorKind::kConfig, what + message); };
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT || e == ENOTDIR) return fail(": no such file");
    if (e == EACCES) return fail(" cannot be read (permission denied)");
    return fail(" cannot be opened: " + std::string(std::strerror(e)));
  }
  struct stat st = {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return fail(" cannot be read: " + std::string(std::strerror(e)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(S_ISDIR(st.st_mode) ? " is a directory, not a key file" : " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(" is open to group or others (mode " + std::string(mode) + "): run chmod 600 " + path);
  }
  if (static_cast<unsigned long long>(st.st_size) > kMaxKeyFileBytes) {
    ::close(fd);
    return fail(" is " + std::to_string(st.st_size) + " bytes: a key file holds one key (at most 64 KiB)");
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
      if (text.size() > kMaxKeyFileBytes) break;
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      int e = errno;
      ::close(fd);
      return fail(" cannot be read: " + std::string(std::strerror(e)));
    }
  }
  ::close(fd);
  if (Trim(text).empty()) return fail(" is empty (the key goes on its first line)");
  std::string key = FirstLine(text);
  if (key.empty()) return fail(" has an empty first line (the key goes on its first line)");
  return key;
}

Result<std::string> RunKeyCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  const std::string what = DescribeCommand(argv);
  if (argv.empty() || argv[0].empty()) return MakeError(ErrorKind::kInvalidArgument, what + ": no command");
  if (!g_commands_enabled) return MakeError(ErrorKind::kIo, what + " not run: key commands are turned off in this process");
  Child child;
  if (int e = Spawn(argv, child); e != 0) {
    if (e == ENOENT || e == ENOTDIR) return MakeError(ErrorKind::kIo, what + ": " + argv[0] + " not found");
    if (e == EACCES) return MakeError(ErrorKind::kIo, what + ": " + argv[0] + " cannot be run (permission denied)");
    return MakeError(ErrorKind::kIo, what + " cannot be started: " + std::strerror(e));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out, err;
  bool out_open = true, err_open = true, exited = false, timed_out = false;
  int status = 0;
  for (;;) {
    if (::waitpid(child.pid, &status, WNOHANG) == child.pid) exited = true;
    Drain(child.out, out, kMaxStdoutBytes, out_open);
    Drain(child.err, err, kMaxStderrBytes, err_open);
    // Once it has exited, what it wrote is in the pipes (drained just now); a process it
    // left behind holding them open is not waited for.
    if (exited) break;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      ::killpg(child.pid, SIGKILL);
      while (::waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
      }
      timed_out = true;
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    pollfd fds[2];
    nfds_t n = 0;
    if (out_open) fds[n++] = pollfd{child.out, POLLIN, 0};
    if (err_open) fds[n++] = pollfd{child.err, POLLIN, 0};
    // Short waits: the exit itself is only seen by waitpid (both pipes may be closed).
    ::poll(n ? fds : nullptr, n, static_cast<int>(std::clamp<long long>(left, 1, 20)));
  }
  ::close(child.out);
  ::close(child.err);
  if (timed_out) return MakeError(ErrorKind::kIo, what + " timed out after " + FormatDuration(timeout));
  if (WIFSIGNALED(status)) {
    return MakeError(ErrorKind::kIo, what + " was killed by signal " + std::to_string(WTERMSIG(status)) + HintFrom(err, out));
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code != 0) {
    return MakeError(ErrorKind::kIo, what + " exited with code " + std::to_string(code) + HintFrom(err, out));
  }
  std::string key = FirstLine(out);
  if (key.empty()) return MakeError(ErrorKind::kIo, what + " printed no key on its first line" + HintFrom(err, out));
  return key;
}

}  // namespace kpm::server
