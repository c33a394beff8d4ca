// The real CurlHttpClient running transfers at once on one fiber::Loop, against a
// cpp-httplib server on 127.0.0.1 (ephemeral port) that counts the TCP connections it
// accepts and holds each request until its partners have arrived (a barrier), so the
// transfers provably overlap without any timing assumption.

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <httplib.h>

#include "common/fiber.h"
#include "providers/http_client.h"

namespace kpm::providers {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

/// httplib hands every accepted socket to its task queue once: counting enqueue()
/// counts the TCP connections the server accepted (keep-alive requests on a connection
/// stay inside that one task).
class CountingQueue : public httplib::TaskQueue {
 public:
  CountingQueue(size_t threads, std::atomic<int>* accepted) : pool_(threads), accepted_(accepted) {}
  void enqueue(std::function<void()> fn) override {
    accepted_->fetch_add(1);
    pool_.enqueue(std::move(fn));
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_;
  std::atomic<int>* accepted_;
};

/// GET /hold?tag=T answers "T" once `group` requests have arrived in its group (the
/// k-th request, from 0, is in group k / group): a request returns only while all of
/// its group are in flight together. If a group is not complete within 5 s the barrier
/// breaks and every request answers at once (peak() then shows the overlap was missing).
class HoldServer {
 public:
  explicit HoldServer(int group) : group_(group) {
    server_.new_task_queue = [this] { return new CountingQueue(96, &accepted_); };
    server_.set_keep_alive_max_count(100000);  // the default (5) would close connections
    server_.set_keep_alive_timeout(30);
    server_.Get("/hold", [this](const httplib::Request& req, httplib::Response& res) {
      std::unique_lock<std::mutex> lock(mu_);
      ports_.insert(req.remote_port);
      const int index = arrived_++;
      ++in_flight_;
      peak_ = std::max(peak_, in_flight_);
      const int target = (index / group_ + 1) * group_;
      cv_.notify_all();
      if (!cv_.wait_for(lock, 5s, [&] { return arrived_ >= target || broken_ || stopping_; })) broken_ = true;
      cv_.notify_all();
      --in_flight_;
      lock.unlock();
      res.set_content(req.get_param_value("tag"), "text/plain");
    });
    // httplib listens with a tiny backlog (5): 64 connects at once would overflow it and
    // the kernel would drop some handshakes (retried a second or more later). Listening
    // again on the same socket raises the backlog.
    server_.set_socket_options([this](socket_t sock) {
      httplib::default_socket_options(sock);
      listen_fd_ = sock;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (listen_fd_ >= 0) ::listen(listen_fd_, 256);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    auto until = SteadyClock::now() + 5s;
    while (!server_.is_running() && SteadyClock::now() < until) std::this_thread::sleep_for(1ms);
  }
  ~HoldServer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    server_.stop();
    thread_.join();
  }

  std::string Url(const std::string& tag) const {
    return std::string("http://127.0.0.1:").append(std::to_string(port_)) + "/hold?tag=" + tag;
  }
  int accepted() const { return accepted_.load(); }
  int peak() {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_;
  }
  bool broken() {
    std::lock_guard<std::mutex> lock(mu_);
    return broken_;
  }
  size_t ports() {
    std::lock_guard<std::mutex> lock(mu_);
    return ports_.size();
  }

 private:
  httplib::Server server_;
  const int group_;
  std::atomic<int> accepted_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  int in_flight_ = 0;
  int peak_ = 0;
  bool broken_ = false;
  bool stopping_ = false;
  std::set<int> ports_;
  int port_ = 0;
  int listen_fd_ = -1;
  std::thread thread_;
};

HttpRequest HoldRequest(const HoldServer& server, const std::string& tag) {
  HttpRequest req;
  req.method = "GET";
  req.url = server.Url(tag);
  req.total_timeout_ms = 20000;
  req.first_byte_timeout_ms = 20000;
  return req;
}

/// Runs every request at once, each on its own fiber of `loop` (fiber::ForEach from a
/// fiber), and returns the results in request order.
std::vector<HttpResult> SendAllOnFibers(fiber::Loop& loop, HttpClient& http, const std::vector<HttpRequest>& reqs) {
  std::vector<HttpResult> results(reqs.size());
  loop.Run([&] {
    fiber::ForEach(reqs.size(), reqs.size(), [&](size_t i) { results[i] = http.Send(reqs[i], nullptr); });
  });
  return results;
}

void CheckAnswered(const std::vector<HttpResult>& results, const std::vector<std::string>& tags) {
  REQUIRE(results.size() == tags.size());
  for (size_t i = 0; i < results.size(); ++i) {
    INFO("request " << i << ": " << results[i].error_message);
    CHECK(results[i].error == TransportError::kNone);
    CHECK(results[i].status == 200);
    CHECK(results[i].body_complete);
    CHECK(results[i].body == tags[i]);  // its own answer, not another transfer's
  }
}

TEST_CASE("Two transfers at once on one loop reuse the two kept-alive connections round after round",
          "[integration][providers][concurrency]") {
  HoldServer server(2);
  fiber::Loop loop;
  auto http = MakeCurlHttpClient(loop);

  SECTION("on fibers of the loop") {
    // Warm-up: two transfers at once need (and open) two connections.
    CheckAnswered(SendAllOnFibers(loop, *http, {HoldRequest(server, "warm-a"), HoldRequest(server, "warm-b")}),
                  {"warm-a", "warm-b"});
    REQUIRE(server.accepted() == 2);
    for (int round = 0; round < 5; ++round) {
      INFO("round " << round);
      const std::string a = std::string("r").append(std::to_string(round)) + "-a";
      const std::string b = std::string("r").append(std::to_string(round)) + "-b";
      CheckAnswered(SendAllOnFibers(loop, *http, {HoldRequest(server, a), HoldRequest(server, b)}), {a, b});
      CHECK(server.accepted() == 2);
    }
  }
  SECTION("from two threads that are not on the loop") {
    auto send_pair = [&](const std::string& a, const std::string& b) {
      std::vector<HttpResult> results(2);
      std::thread ta([&] { results[0] = http->Send(HoldRequest(server, a), nullptr); });
      std::thread tb([&] { results[1] = http->Send(HoldRequest(server, b), nullptr); });
      ta.join();
      tb.join();
      CheckAnswered(results, {a, b});
    };
    send_pair("warm-a", "warm-b");
    REQUIRE(server.accepted() == 2);
    for (int round = 0; round < 5; ++round) {
      INFO("round " << round);
      send_pair(std::string("r").append(std::to_string(round)) + "-a", std::string("r").append(std::to_string(round)) + "-b");
      CHECK(server.accepted() == 2);
    }
  }
  // Every pair was in flight together (the barrier never broke), and only two client
  // ports were ever seen: the same two TCP connections carried all twelve requests.
  CHECK_FALSE(server.broken());
  CHECK(server.peak() == 2);
  CHECK(server.ports() == 2);
  CHECK(server.accepted() == 2);
}

TEST_CASE("64 transfers at once on fibers of one loop all complete with their own answers",
          "[integration][providers][concurrency]") {
  constexpr int kTransfers = 64;
  HoldServer server(kTransfers);
  fiber::Loop loop;
  auto http = MakeCurlHttpClient(loop);
  std::vector<HttpRequest> reqs;
  std::vector<std::string> tags;
  for (int i = 0; i < kTransfers; ++i) {
    tags.push_back(std::string("t").append(std::to_string(i)));
    reqs.push_back(HoldRequest(server, tags.back()));
  }
  CheckAnswered(SendAllOnFibers(loop, *http, reqs), tags);
  // All 64 were in flight at the same moment (none waited for another to end), each on
  // a connection of its own.
  CHECK_FALSE(server.broken());
  CHECK(server.peak() == kTransfers);
  CHECK(server.accepted() == kTransfers);
}

}  // namespace
}  // namespace kpm::providers
