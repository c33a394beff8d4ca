#include "tests/support/pipe_client.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace kpm::testing {

PipeClient::PipeClient() {
  // A server writing after we are gone must get EPIPE, not kill the test binary.
  signal(SIGPIPE, SIG_IGN);
  if (::pipe2(to_server_, O_CLOEXEC) != 0 || ::pipe2(from_server_, O_CLOEXEC) != 0) {
    to_server_[0] = to_server_[1] = from_server_[0] = from_server_[1] = -1;
    return;
  }
  reader_ = std::thread([this] { ReadLoop(); });
}

PipeClient::~PipeClient() {
  CloseInput();
  if (from_server_[1] >= 0) ::close(from_server_[1]);  // the reader sees EOF
  if (reader_.joinable()) reader_.join();
  if (from_server_[0] >= 0) ::close(from_server_[0]);
  if (to_server_[0] >= 0) ::close(to_server_[0]);
}

bool PipeClient::SendRaw(std::string_view bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    if (to_server_[1] < 0) return false;
    const ssize_t n = ::write(to_server_[1], bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool PipeClient::Request(const Json& id, std::string_view method, const Json& params) {
  Json j = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) j["params"] = params;
  return Send(j);
}

bool PipeClient::Notify(std::string_view method, const Json& params) {
  Json j = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) j["params"] = params;
  return Send(j);
}

void PipeClient::CloseInput() {
  if (to_server_[1] >= 0) {
    ::close(to_server_[1]);
    to_server_[1] = -1;
  }
}

void PipeClient::ReadLoop() {
  std::string buf;
  char chunk[65536];
  for (;;) {
    const ssize_t n = ::read(from_server_[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      Json j = Json::parse(line, nullptr, false);
      std::lock_guard<std::mutex> lock(mu_);
      messages_.push_back(j.is_discarded() ? Json(line) : std::move(j));
      lines_.push_back(std::move(line));
      cv_.notify_all();
    }
  }
}

bool PipeClient::IsReplyTo(const Json& message, const Json& id) {
  if (!message.is_object() || message.contains("method")) return false;
  const auto it = message.find("id");
  // Compare type as well as value: "1" and 1 are different ids.
  return it != message.end() && it->is_string() == id.is_string() && *it == id;
}

std::optional<PipeClient::Json> PipeClient::WaitForReply(const Json& id,
                                                         std::chrono::milliseconds timeout) {
  return WaitFor([&id](const Json& m) { return IsReplyTo(m, id); }, timeout);
}

std::optional<PipeClient::Json> PipeClient::WaitFor(const std::function<bool(const Json&)>& pred,
                                                    std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  std::optional<Json> found;
  cv_.wait_for(lock, timeout, [&] {
    for (const auto& m : messages_) {
      if (pred(m)) {
        found = m;
        return true;
      }
    }
    return false;
  });
  return found;
}

std::vector<PipeClient::Json> PipeClient::Messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}

std::vector<std::string> PipeClient::Lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

std::size_t PipeClient::ReplyCount(const Json& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t n = 0;
  for (const auto& m : messages_) n += IsReplyTo(m, id);
  return n;
}

std::vector<PipeClient::Json> PipeClient::Notifications(std::string_view method) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Json> out;
  for (const auto& m : messages_) {
    if (m.is_object() && m.value("method", "") == method) out.push_back(m);
  }
  return out;
}

}  // namespace kpm::testing
