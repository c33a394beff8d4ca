// The size caps (providers/caps.h) against a real upstream that never stops: the real
// CurlHttpClient and adapter vs a cpp-httplib server on 127.0.0.1. Each cap must end
// the attempt as a server_error naming it, stop the transfer (the server sees its
// writes fail long before it has sent what it meant to) and keep memory bounded.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <httplib.h>

#include "keypool/clock.h"
#include "providers/caps.h"
#include "providers/provider.h"

// Peak-RSS bounds hold for optimised builds only: under a sanitizer (quarantine, shadow
// memory) they say nothing. What must hold everywhere is that the transfer stops:
// server.sent() stays bounded.
#ifdef KPM_UNOPTIMISED_BUILD
#define CHECK_PEAK_MIB(growth, bound) static_cast<void>(growth)
#else
#define CHECK_PEAK_MIB(growth, bound) CHECK((growth) < (bound))
#endif

namespace kpm::providers {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kGiB = size_t{1} << 30;

/// A server whose answers go on until the client stops reading (or `limit` bytes).
class EndlessServer {
 public:
  EndlessServer() {
    // Content deltas forever, no [DONE]: only the answer cap can stop it.
    Endless("/answer/chat/completions", "text/event-stream",
            "data: {\"choices\":[{\"delta\":{\"content\":\"" + std::string(16 * kKiB, 'x') + "\"}}]}\n\n");
    // "data: xxxx…" with no line end, up to 1 GiB.
    Endless("/line/chat/completions", "text/event-stream", std::string(64 * kKiB, 'x'), "data: ");
    // data lines forever, no blank line: one endless event.
    Endless("/event/chat/completions", "text/event-stream", "data: " + std::string(1000, 'x') + "\n");
    // A 1 GiB 2xx body for stream:false.
    Endless("/body/chat/completions", "application/json", std::string(64 * kKiB, ' '),
            "{\"choices\":[{\"message\":{\"content\":\"hi\"}}],\"pad\":\"");
    // A 1 GiB body with a Content-Length.
    server_.Post("/declared/chat/completions", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content_provider(kGiB, "application/json", [this](size_t offset, size_t length, httplib::DataSink& sink) {
        static const std::string kSpaces(64 * kKiB, ' ');
        if (stopping_) return false;
        size_t n = std::min(length, kSpaces.size());
        if (!sink.write(kSpaces.data(), n)) return false;
        sent_ = offset + n;
        return true;
      });
    });
    // 300 KiB of response headers.
    server_.Post("/headers/chat/completions", [](const httplib::Request&, httplib::Response& res) {
      for (int i = 0; i < 300; ++i) res.set_header("X-Pad-" + std::to_string(i), std::string(1000, 'h'));
      res.set_content("{}", "application/json");
    });
    // A stream:false body that trickles: one byte every 20 ms.
    server_.Post("/trickle/chat/completions", [this](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("application/json", [this](size_t, httplib::DataSink& sink) {
        const std::string body = R"({"choices":[{"message":{"content":"Hello, this arrives slowly"}}]})";
        for (char c : body) {
          if (stopping_ || !sink.write(&c, 1)) return false;
          auto until = SteadyClock::now() + 20ms;
          while (!stopping_ && SteadyClock::now() < until) std::this_thread::sleep_for(2ms);
        }
        sink.done();
        return true;
      });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    auto until = SteadyClock::now() + 5s;
    while (!server_.is_running() && SteadyClock::now() < until) std::this_thread::sleep_for(1ms);
  }
  ~EndlessServer() {
    stopping_ = true;
    server_.stop();
    thread_.join();
  }
  std::string Url(const std::string& base) const { return "http://127.0.0.1:" + std::to_string(port_) + base; }
  size_t sent() const { return sent_; }

 private:
  void Endless(const std::string& path, const std::string& type, std::string piece, std::string head = "") {
    server_.Post(path, [this, type, piece, head](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider(type, [this, piece, head](size_t, httplib::DataSink& sink) {
        if (!head.empty() && !sink.write(head.data(), head.size())) return false;
        sent_ = head.size();
        while (!stopping_ && sent_ < kGiB) {
          if (!sink.write(piece.data(), piece.size())) return false;  // the client has gone
          sent_ += piece.size();
        }
        sink.done();
        return true;
      });
    });
  }

  httplib::Server server_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> sent_{0};
  int port_ = 0;
  std::thread thread_;
};

/// A field of /proc/self/status in KiB ("VmRSS", "VmHWM").
size_t StatusKiB(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoul(line.substr(field.size() + 1));
  }
  return 0;
}

/// Resets the peak-RSS mark (Linux: writing 5 to clear_refs), so VmHWM then measures
/// the peak of what follows alone.
bool ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return out.good();
}

struct Run {
  keypool::AttemptOutcome outcome;
  size_t peak_growth_mib = 0;  // peak RSS during the attempt minus RSS before it
};

Run Attempt(const std::string& base_url, bool stream, int max_tokens = 100, int64_t timeout_ms = 30000) {
  kpm::fiber::Loop loop;
  auto http = MakeCurlHttpClient(loop);
  keypool::SystemClock clock;
  // std::string values, not literals, are assigned: GCC 12 at -O3 reports a false
  // -Wrestrict in std::string::operator=(const char*) (GCC bug 105329).
  ProviderConfig cfg;
  cfg.name = std::string("cap");
  cfg.type = ProviderType::kOpenAICompatible;
  cfg.base_url = base_url;
  cfg.model = std::string("m");
  cfg.stream = stream;
  cfg.timeout_ms = timeout_ms;
  auto provider = MakeProvider(cfg, *http, clock);
  CompletionRequest req;
  req.messages = {{"user", "hi"}};
  req.max_tokens = max_tokens;
  keypool::KeyLease key;
  key.secret = std::string("sk-cap-test-key-0123456789");
  AttemptContext ctx;
  ctx.deadline_ms = clock.NowMs() + 60000;
  Completion c;
  Run run;
  const size_t before = StatusKiB("VmRSS");
  REQUIRE(ResetPeakRss());
  run.outcome = provider->Complete(key, req, ctx, &c);
  const size_t peak = StatusKiB("VmHWM");
  run.peak_growth_mib = peak > before ? (peak - before) / 1024 : 0;
  return run;
}

TEST_CASE("caps: an endless answer stops at the answer cap", "[integration][providers]") {
  EndlessServer server;
  Run run = Attempt(server.Url("/answer"), true, 100);  // max_tokens 100: 1 MiB
  CHECK(run.outcome.outcome == keypool::Outcome::kServerError);
  CHECK(run.outcome.message == "200 with an answer over 1 MiB");
  WARN("peak RSS growth " << run.peak_growth_mib << " MiB; server sent " << server.sent() / kMiB << " MiB");
  CHECK_PEAK_MIB(run.peak_growth_mib, 32);
  CHECK(server.sent() < 64 * kMiB);
}

TEST_CASE("caps: a 1 GiB stream line with no line end stops at 1 MiB", "[integration][providers]") {
  EndlessServer server;
  Run run = Attempt(server.Url("/line"), true);
  CHECK(run.outcome.outcome == keypool::Outcome::kServerError);
  CHECK(run.outcome.message == "200 with a stream line over 1 MiB");
  WARN("peak RSS growth " << run.peak_growth_mib << " MiB; server sent " << server.sent() / kMiB << " MiB");
  CHECK_PEAK_MIB(run.peak_growth_mib, 32);
  CHECK(server.sent() < 64 * kMiB);
}

TEST_CASE("caps: an event that never ends stops at 4 MiB", "[integration][providers]") {
  EndlessServer server;
  Run run = Attempt(server.Url("/event"), true);
  CHECK(run.outcome.outcome == keypool::Outcome::kServerError);
  CHECK(run.outcome.message == "200 with an event's data over 4 MiB");
  WARN("peak RSS growth " << run.peak_growth_mib << " MiB; server sent " << server.sent() / kMiB << " MiB");
  CHECK_PEAK_MIB(run.peak_growth_mib, 32);
  CHECK(server.sent() < 64 * kMiB);
}

TEST_CASE("caps: a 1 GiB stream:false body stops at its cap and is reported as cut", "[integration][providers]") {
  EndlessServer server;
  Run run = Attempt(server.Url("/body"), false);  // max_tokens 100: a 3 MiB body cap
  CHECK(run.outcome.outcome == keypool::Outcome::kServerError);
  CHECK(run.outcome.message == "200 with a body over 3 MiB");
  WARN("peak RSS growth " << run.peak_growth_mib << " MiB; server sent " << server.sent() / kMiB << " MiB");
  // A chunked body has no declared length, so the string grows by doubling and the
  // buffers it outgrows stay resident: about three times the cap at worst.
  CHECK_PEAK_MIB(run.peak_growth_mib, 16);
  CHECK(server.sent() < 64 * kMiB);
}

TEST_CASE("caps: a declared Content-Length over the cap is refused before it is read", "[integration][providers]") {
  EndlessServer server;
  Run run = Attempt(server.Url("/declared"), false);
  CHECK(run.outcome.outcome == keypool::Outcome::kServerError);
  CHECK(run.outcome.message == "200 with a body over 3 MiB");
  WARN("peak RSS growth " << run.peak_growth_mib << " MiB; server sent " << server.sent() / kMiB << " MiB");
  CHECK_PEAK_MIB(run.peak_growth_mib, 16);
  CHECK(server.sent() < 64 * kMiB);
}

TEST_CASE("caps: response headers over 256 KiB end the attempt", "[integration][providers]") {
  EndlessServer server;
  Run run = Attempt(server.Url("/headers"), true);
  CHECK(run.outcome.outcome == keypool::Outcome::kServerError);
  CHECK(run.outcome.message == "response headers over 256 KiB");
}

TEST_CASE("stream:false: a body still trickling at timeoutMs is a timeout", "[integration][providers]") {
  EndlessServer server;
  Run run = Attempt(server.Url("/trickle"), false, 100, 400);
  CHECK(run.outcome.outcome == keypool::Outcome::kTimeout);
  CHECK(run.outcome.message.find("timeout") == 0);
}

}  // namespace
}  // namespace kpm::providers
