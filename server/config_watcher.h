#pragma once
/// ConfigWatcher: tells when the config file changed, so the server reloads it
/// without a restart. inotify on the file's folder (editors save by writing a new file
/// and renaming it over the old one, which a watch on the file itself would lose), the
/// file's name filtered; a burst of events is one change once the folder has been quiet
/// for a moment. Trigger() (SIGHUP) asks for a reload by hand.

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace kpm::server {

class ConfigWatcher {
 public:
  /// Calls `on_change` on the watcher's own thread after `path` was written, replaced,
  /// created or Trigger() was called — once per burst, `quiet` after its last event — and
  /// `on_idle` about once a second, on the same thread. When inotify cannot watch the
  /// folder it logs one warning and only Trigger() works.
  ConfigWatcher(std::string path, std::function<void()> on_change, std::function<void()> on_idle,
                std::chrono::milliseconds quiet = std::chrono::milliseconds(150));
  /// Stops and joins the thread (a callback running finishes first).
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  /// Thread-safe, returns at once: a reload as if the file had changed.
  void Trigger();
  /// False when the folder could not be watched (then only Trigger() reloads).
  bool watching() const { return inotify_fd_ >= 0; }

 private:
  void Run();

  std::string dir_;
  std::string name_;
  std::function<void()> on_change_;
  std::function<void()> on_idle_;
  std::chrono::milliseconds quiet_;
  int inotify_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};  // Trigger() writes 't', the destructor 'q'
  std::thread thread_;
};

}  // namespace kpm::server
