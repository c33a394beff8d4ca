#include "mcp/outbox.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace kpm::mcp {

Outbox::~Outbox() { Close(); }

void Outbox::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (writer_.joinable() || closing_) return;
  writer_ = std::thread([this] { WriterLoop(); });
}

void Outbox::Send(std::string line) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    queue_.push_back(Entry{std::move(line), ""});
  }
  cv_.notify_one();
}

void Outbox::Offer(const std::string& key, std::string line) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    // Superseded while it waited: the newer value takes its place. Only the last line
    // queued is replaced, so what follows it on the wire stays after it (progress values
    // never go backwards).
    if (!queue_.empty() && queue_.back().key == key) {
      Entry& e = queue_.back();
      droppable_bytes_ += line.size();
      droppable_bytes_ -= e.line.size();
      e.line = std::move(line);
      return;
    }
    if (droppable_bytes_ + line.size() > kMaxDroppableBytes) return;  // the client is not reading
    droppable_bytes_ += line.size();
    queue_.push_back(Entry{std::move(line), key});
  }
  cv_.notify_one();
}

void Outbox::WriterLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return closing_ || !queue_.empty(); });
    if (queue_.empty()) return;  // closing and drained
    Entry e = std::move(queue_.front());
    queue_.pop_front();
    if (!e.key.empty()) droppable_bytes_ -= e.line.size();
    lock.unlock();
    WriteOne(e.line);
    lock.lock();
  }
}

void Outbox::WriteOne(const std::string& line) {
  if (transport_.WriteLine(line)) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (!write_failed_) spdlog::warn("cannot write to the client; its output is closed");
  write_failed_ = true;
}

void Outbox::Close() {
  std::thread writer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closing_ = true;
    writer = std::move(writer_);
  }
  cv_.notify_all();
  if (writer.joinable()) {
    writer.join();
  } else {
    // Never started: write what was queued here.
    std::unique_lock<std::mutex> lock(mu_);
    while (!queue_.empty()) {
      Entry e = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      WriteOne(e.line);
      lock.lock();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  queue_.clear();
  droppable_bytes_ = 0;
}

bool Outbox::write_failed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return write_failed_;
}

}  // namespace kpm::mcp
