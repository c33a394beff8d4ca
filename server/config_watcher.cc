#include "server/config_watcher.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

namespace kpm::server {

ConfigWatcher::ConfigWatcher(std::string path, std::function<void()> on_change, std::function<void()> on_idle,
                             std::chrono::milliseconds quiet)
    : on_change_(std::move(on_change)), on_idle_(std::move(on_idle)), quiet_(quiet) {
  std::filesystem::path p = std::filesystem::absolute(path);
  dir_ = p.parent_path().string();
  name_ = p.filename().string();
  if (::pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    spdlog::warn("config reload: cannot create a pipe ({}); the config is not reloaded", std::strerror(errno));
    return;
  }
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  // Written and closed, renamed over, created, removed: every way an editor saves.
  if (inotify_fd_ >= 0 &&
      ::inotify_add_watch(inotify_fd_, dir_.c_str(),
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM) < 0) {
    ::close(inotify_fd_);
    inotify_fd_ = -1;
  }
  if (inotify_fd_ < 0) {
    spdlog::warn("config reload: cannot watch {} ({}); send SIGHUP to reload the config", dir_,
                 std::strerror(errno));
  }
  thread_ = std::thread([this] { Run(); });
}

ConfigWatcher::~ConfigWatcher() {
  if (thread_.joinable()) {
    const char q = 'q';
    [[maybe_unused]] ssize_t n = ::write(wake_pipe_[1], &q, 1);
    thread_.join();
  }
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  for (int fd : wake_pipe_) {
    if (fd >= 0) ::close(fd);
  }
}

void ConfigWatcher::Trigger() {
  const char t = 't';
  [[maybe_unused]] ssize_t n = ::write(wake_pipe_[1], &t, 1);
}

void ConfigWatcher::Run() {
  using Clock = std::chrono::steady_clock;
  bool pending = false;             // a change seen, waiting for the folder to be quiet
  Clock::time_point last_event{};   // of the pending burst
  Clock::time_point last_idle = Clock::now();
  for (;;) {
    int timeout_ms = 1000;
    if (pending) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(last_event + quiet_ - Clock::now());
      timeout_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    pollfd fds[2] = {{wake_pipe_[0], POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    int n = ::poll(fds, inotify_fd_ >= 0 ? 2 : 1, timeout_ms);
    if (n < 0 && errno != EINTR) return;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      char buf[64];
      ssize_t got;
      while ((got = ::read(wake_pipe_[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < got; ++i) {
          if (buf[i] == 'q') return;
          pending = true;
          last_event = Clock::now() - quiet_;  // by hand: no burst to wait out
        }
      }
    }
    if (n > 0 && inotify_fd_ >= 0 && (fds[1].revents & POLLIN)) {
      alignas(inotify_event) char buf[4096];
      ssize_t got;
      while ((got = ::read(inotify_fd_, buf, sizeof buf)) > 0) {
        for (char* p = buf; p < buf + got;) {
          auto* ev = reinterpret_cast<inotify_event*>(p);
          if (ev->len > 0 && name_ == ev->name) {
            pending = true;
            last_event = Clock::now();
          }
          p += sizeof(inotify_event) + ev->len;
        }
      }
    }
    const Clock::time_point now = Clock::now();
    if (pending && now - last_event >= quiet_) {
      pending = false;
      if (on_change_) on_change_();
    }
    if (now - last_idle >= std::chrono::seconds(1)) {
      last_idle = now;
      if (on_idle_) on_idle_();
    }
  }
}

}  // namespace kpm::server
