#include "mcp/stdio_transport.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <utility>

namespace kpm::mcp {
namespace {

constexpr std::size_t kReadChunk = 64 * 1024;

bool IsBlank(std::string_view s) {
  return s.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

StdioTransport::StdioTransport(StdioTransportOptions options) : options_(std::move(options)) {
  int fds[2];
  // Without the wake pipe Interrupt() degrades to "takes effect at the next line".
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
    wake_read_ = fds[0];
    wake_write_ = fds[1];
  }
}

namespace {
StdioTransportOptions FdOptions(int in_fd, int out_fd, std::size_t max_line_bytes) {
  StdioTransportOptions options;  // the other fields keep their defaults
  options.in_fd = in_fd;
  options.out_fd = out_fd;
  options.max_line_bytes = max_line_bytes;
  return options;
}
}  // namespace

StdioTransport::StdioTransport(int in_fd, int out_fd, std::size_t max_line_bytes)
    : StdioTransport(FdOptions(in_fd, out_fd, max_line_bytes)) {}

void StdioTransport::SetOutputFilter(std::function<std::string(std::string)> filter) {
  options_.output_filter = std::move(filter);
}

StdioTransport::~StdioTransport() {
  if (wake_read_ >= 0) ::close(wake_read_);
  if (wake_write_ >= 0) ::close(wake_write_);
}

void StdioTransport::Interrupt() {
  interrupted_.store(true);
  if (wake_write_ >= 0) {
    const char byte = 1;
    // Never drained: every later poll() sees it too. A full pipe already wakes.
    [[maybe_unused]] ssize_t n = ::write(wake_write_, &byte, 1);
  }
}

bool StdioTransport::Fill() {
  pollfd fds[2] = {{options_.in_fd, POLLIN, 0}, {wake_read_, POLLIN, 0}};
  const nfds_t nfds = wake_read_ >= 0 ? 2 : 1;
  for (;;) {
    if (interrupted_.load()) return false;
    const int r = ::poll(fds, nfds, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (nfds == 2 && fds[1].revents != 0) return false;
    if (fds[0].revents == 0) continue;
    char chunk[kReadChunk];
    const ssize_t n = ::read(options_.in_fd, chunk, sizeof chunk);
    if (n > 0) {
      buf_.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0) return false;
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    return false;
  }
}

void StdioTransport::KeepTail(std::string_view bytes) {
  if (bytes.size() >= protocol::kIdScanBytes) {
    too_long_tail_.assign(bytes.substr(bytes.size() - protocol::kIdScanBytes));
    return;
  }
  too_long_tail_.append(bytes);
  if (too_long_tail_.size() > protocol::kIdScanBytes) {
    too_long_tail_.erase(0, too_long_tail_.size() - protocol::kIdScanBytes);
  }
}

Transport::ReadStatus StdioTransport::FinishTooLong(std::string& line) {
  discarding_ = false;
  scanned_ = 0;
  if (!too_long_tail_.empty() && too_long_tail_.back() == '\r') too_long_tail_.pop_back();
  line = too_long_head_ + '\n' + too_long_tail_;  // no line holds a '\n': it splits them
  too_long_head_.clear();
  too_long_tail_.clear();
  return ReadStatus::kTooLong;
}

Transport::ReadStatus StdioTransport::ReadLine(std::string& line) {
  for (;;) {
    if (interrupted_.load()) return ReadStatus::kClosed;
    if (discarding_) {
      // Inside an over-long line: keep its last bytes as they go by (the id may be
      // there), drop the rest, and report the line once it ends.
      const std::size_t nl = buf_.find('\n');
      KeepTail(std::string_view(buf_).substr(0, nl == std::string::npos ? buf_.size() : nl));
      if (nl != std::string::npos) {
        buf_.erase(0, nl + 1);
        return FinishTooLong(line);
      }
      buf_.clear();
      if (eof_ || !Fill()) {
        if (interrupted_.load()) return ReadStatus::kClosed;
        eof_ = true;
        return FinishTooLong(line);  // the input ended inside the line
      }
      continue;
    }
    const std::size_t nl = buf_.find('\n', scanned_);
    if (nl != std::string::npos) {
      scanned_ = 0;
      if (nl > options_.max_line_bytes) {
        too_long_head_.assign(buf_, 0, std::min(nl, protocol::kIdScanBytes));
        KeepTail(std::string_view(buf_).substr(0, nl));
        buf_.erase(0, nl + 1);
        return FinishTooLong(line);
      }
      line.assign(buf_, 0, nl);
      buf_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (IsBlank(line)) continue;
      return ReadStatus::kLine;
    }
    scanned_ = buf_.size();
    if (buf_.size() > options_.max_line_bytes) {
      // Never buffer an unbounded line: keep its head and its tail, drop the middle.
      too_long_head_.assign(buf_, 0, std::min(buf_.size(), protocol::kIdScanBytes));
      too_long_tail_.clear();
      KeepTail(buf_);
      buf_.clear();
      scanned_ = 0;
      discarding_ = true;
      continue;
    }
    if (eof_) {
      if (buf_.empty() || IsBlank(buf_)) {
        buf_.clear();
        return ReadStatus::kClosed;
      }
      line = std::move(buf_);  // a last line without its '\n'
      buf_.clear();
      scanned_ = 0;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return ReadStatus::kLine;
    }
    if (!Fill()) {
      if (interrupted_.load()) return ReadStatus::kClosed;
      eof_ = true;
    }
  }
}

bool StdioTransport::WaitWritable() {
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> give_up;
  for (;;) {
    const bool stopping = interrupted_.load();
    int timeout_ms = -1;
    if (stopping) {
      if (!give_up) give_up = Clock::now() + options_.stop_write_timeout;
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*give_up - Clock::now()).count();
      timeout_ms = static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
    } else if (wake_read_ < 0) {
      timeout_ms = 200;  // no wake pipe: look at interrupted_ now and then
    }
    // Once stopping, the wake pipe (never drained) would fire at once: leave it out.
    pollfd fds[2] = {{options_.out_fd, POLLOUT, 0}, {wake_read_, POLLIN, 0}};
    const nfds_t nfds = !stopping && wake_read_ >= 0 ? 2 : 1;
    const int r = ::poll(fds, nfds, timeout_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      return true;  // let write() report the error
    }
    if (fds[0].revents != 0) return true;  // writable, or POLLERR/POLLHUP: write() says which
    if (stopping && r == 0) return false;  // the peer took nothing for stop_write_timeout
  }
}

bool StdioTransport::WriteLine(std::string_view line) {
  std::string out = options_.output_filter ? options_.output_filter(std::string(line))
                                           : std::string(line);
  out.push_back('\n');
  std::lock_guard<std::mutex> lock(write_mu_);
  if (output_abandoned_) return false;
  std::size_t done = 0;
  while (done < out.size()) {
    if (!WaitWritable()) {
      output_abandoned_ = true;  // later writes fail at once instead of waiting again
      return false;
    }
    // Never block in write(): that is where a client that stopped reading kept a
    // SIGTERM'd server alive. After POLLOUT a pipe has room for one more page, so a write
    // of at most PIPE_BUF bytes completes without waiting (Linux pipe_write); the fd stays
    // blocking because O_NONBLOCK would also change it for whoever shares it (a terminal).
    const std::size_t chunk = std::min<std::size_t>(out.size() - done, PIPE_BUF);
    const ssize_t n = ::write(options_.out_fd, out.data() + done, chunk);
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    return false;
  }
  return true;
}

}  // namespace kpm::mcp
