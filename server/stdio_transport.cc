#include "server/stdio_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace kpm::server {
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

StdioTransport::StdioTransport(int in_fd, int out_fd, std::size_t max_line_bytes)
    : StdioTransport(StdioTransportOptions{in_fd, out_fd, max_line_bytes, nullptr}) {}

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

Transport::ReadStatus StdioTransport::ReadLine(std::string& line) {
  for (;;) {
    if (interrupted_.load()) return ReadStatus::kClosed;
    if (discarding_) {
      const std::size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        buf_.erase(0, nl + 1);
        discarding_ = false;
        scanned_ = 0;
        continue;
      }
      buf_.clear();
      if (eof_ || !Fill()) return ReadStatus::kClosed;
      continue;
    }
    const std::size_t nl = buf_.find('\n', scanned_);
    if (nl != std::string::npos) {
      scanned_ = 0;
      if (nl > options_.max_line_bytes) {
        buf_.erase(0, nl + 1);
        return ReadStatus::kTooLong;
      }
      line.assign(buf_, 0, nl);
      buf_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (IsBlank(line)) continue;
      return ReadStatus::kLine;
    }
    scanned_ = buf_.size();
    if (buf_.size() > options_.max_line_bytes) {
      // Answer now rather than buffering an unbounded line; drop the rest as it comes.
      buf_.clear();
      scanned_ = 0;
      discarding_ = true;
      return ReadStatus::kTooLong;
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

bool StdioTransport::WriteLine(std::string_view line) {
  std::string out = options_.output_filter ? options_.output_filter(std::string(line))
                                           : std::string(line);
  out.push_back('\n');
  std::lock_guard<std::mutex> lock(write_mu_);
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::write(options_.out_fd, out.data() + done, out.size() - done);
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      pollfd p = {options_.out_fd, POLLOUT, 0};
      ::poll(&p, 1, 1000);
      continue;
    }
    return false;
  }
  return true;
}

}  // namespace kpm::server
