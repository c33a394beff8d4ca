// bench_concurrency: the issue 9 goals for the concurrency core, in one run against one
// loopback mock (bench_mock_upstream --threads 1024), each figure printed with its goal
// and PASS/MISS:
//   1. added latency per `complete` (stream) vs direct streaming HTTP, sequential, p50/p99;
//   2. throughput at 64 in flight: one stdio session vs 64 keep-alive HTTP clients;
//   3. 64 concurrent calls on a 100 ms upstream (mock default step delay:100): wall time;
//   4. 512 concurrent calls on a 1 s upstream (delay:1000): wall time, and the server's
//      peak Threads / VmRSS / VmHWM sampled from /proc/PID/status while they are in flight;
//   5. RSS idle (after initialize, before any call) and after 100k calls (zero latency);
//   6. spawn -> initialize reply, median of 20 spawns.
// The stdio side is a lean pipelined client over StdioProcess (ids, one string search per
// reply), so the driver costs about what the direct HTTP side's `[DONE]` check costs.
//
//   bench_concurrency [--quick] [--calls N] [--mock PATH] [--server-wrapper "CMD ARGS"]
//     --quick: 10x fewer calls (10k instead of 100k for goal 5; it says so).
//     --server-wrapper: run keypool-mcp under CMD (e.g. "perf record -o F --", "strace -c -f
//       -o F"); only the sequential and 64-in-flight series run (for profiles, docs/benchmarks.md).

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bench/bench_stats.h"
#include "tests/support/stdio_driver.h"

namespace kpm::bench {
namespace {

using kpm::testing::Json;
using kpm::testing::StdioProcess;
using std::chrono::milliseconds;

constexpr milliseconds kReadTimeout(15000);
const std::string kKeys[] = {"sk-bench-Ka7Qz2XwLp9Rt4VbNcAA1111", "sk-bench-Mb3Wy8UvJq5Ps1TdHeBB2222",
                             "sk-bench-Pc5Xz1RsTk8Lm2QwJfCC3333"};
int g_errors = 0;
int g_missed = 0;

void Fail(const std::string& what) {
  ++g_errors;
  std::fprintf(stderr, "bench_concurrency: %s\n", what.c_str());
}

using kpm::bench::Fmt;

/// One goal's row (PrintGoal), counted when missed.
void Goal(const std::string& name, const std::string& value, const std::string& goal, bool pass) {
  if (!kpm::bench::PrintGoal(name, value, goal, pass)) ++g_missed;
}

/// Threads, VmRSS and VmHWM (kB) of a process, from /proc/PID/status; zeros when gone.
struct ProcStat {
  long threads = 0;
  long rss_kb = 0;
  long hwm_kb = 0;
};

ProcStat ReadStat(int pid) {
  ProcStat s;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    auto num = [&](const char* field) { return std::atol(line.c_str() + std::strlen(field)); };
    if (line.rfind("Threads:", 0) == 0) s.threads = num("Threads:");
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kb = num("VmRSS:");
    if (line.rfind("VmHWM:", 0) == 0) s.hwm_kb = num("VmHWM:");
  }
  return s;
}

/// Samples a process's status every 2 ms on its own thread and keeps the peaks.
class Sampler {
 public:
  explicit Sampler(int pid) : pid_(pid), thread_([this] { Loop(); }) {}
  ~Sampler() { Stop(); }
  ProcStat Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return peak_;
  }

 private:
  void Loop() {
    while (!stop_) {
      ProcStat s = ReadStat(pid_);
      peak_.threads = std::max(peak_.threads, s.threads);
      peak_.rss_kb = std::max(peak_.rss_kb, s.rss_kb);
      peak_.hwm_kb = std::max(peak_.hwm_kb, s.hwm_kb);
      std::this_thread::sleep_for(milliseconds(2));
    }
  }
  int pid_;
  std::atomic<bool> stop_{false};
  ProcStat peak_;
  std::thread thread_;
};

// ---- direct HTTP ---------------------------------------------------------------------------

/// The body keypool-mcp sends for {"prompt": "hi"} to a streaming openai provider.
const std::string& StreamBody() {
  static const std::string body =
      Json({{"model", "gpt-mock"},
            {"messages", Json::array({{{"role", "user"}, {"content", "hi"}}})},
            {"stream", true},
            {"stream_options", {{"include_usage", true}}}})
          .dump();
  return body;
}

struct Series {
  Samples lat;
  int done = 0;
  int bad = 0;
  double wall_s = 0;
};

/// `total` streaming POSTs over `clients` threads, each with its own keep-alive client.
Series DirectHttp(int port, int total, int clients) {
  std::vector<Samples> per(clients);
  std::atomic<int> next{0};
  std::atomic<int> bad{0};
  auto wall0 = BenchClock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client cli("127.0.0.1", port);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);  // as libcurl does
      cli.set_connection_timeout(5);
      cli.set_read_timeout(15);
      httplib::Headers headers = {{"Authorization", "Bearer " + kKeys[1]}};
      per[c].Reserve(total / clients + 1);
      while (next.fetch_add(1) < total) {
        auto t0 = BenchClock::now();
        auto res = cli.Post("/v1/chat/completions", headers, StreamBody(), "application/json");
        per[c].Add(ElapsedNs(t0, BenchClock::now()));
        if (!res || res->status != 200 || res->body.find("[DONE]") == std::string::npos) bad.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  Series s;
  s.wall_s = ElapsedNs(wall0, BenchClock::now()) / 1e9;
  for (auto& p : per) s.lat.Merge(p);
  s.done = static_cast<int>(s.lat.size());
  s.bad = bad.load();
  return s;
}

// ---- keypool-mcp over stdio ----------------------------------------------------------------

/// A pipelined tools/call client on the server's pipes: ids from `next_id` up.
class Pipeliner {
 public:
  explicit Pipeliner(StdioProcess& server) : server_(server) {}

  /// `total` `complete {"prompt":"hi"}` calls with at most `depth` in flight; latency per
  /// call from its request line written to its reply line read. A reply is good when it
  /// carries the mock's text and no isError.
  Series Run(int total, int depth) {
    Series s;
    s.lat.Reserve(total);
    const int64_t base = next_id_;
    std::vector<BenchClock::time_point> started(total);
    int sent = 0;
    auto send_one = [&] {
      const int64_t id = base + sent;
      std::string line = R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
                         R"(,"method":"tools/call","params":{"name":"complete","arguments":{"prompt":"hi"}}})";
      started[sent] = BenchClock::now();
      if (!server_.WriteLine(line)) return false;
      ++sent;
      return true;
    };
    auto wall0 = BenchClock::now();
    while (sent < std::min(depth, total) && send_one()) {
    }
    while (s.done < sent) {
      auto line = server_.ReadLine(kReadTimeout);
      if (!line) {
        Fail("no reply within 15 s; " + std::to_string(sent - s.done) + " calls lost");
        break;
      }
      size_t at = line->find("\"id\":");
      if (at == std::string::npos) continue;  // a notification
      const int64_t idx = std::strtoll(line->c_str() + at + 5, nullptr, 10) - base;
      if (idx < 0 || idx >= sent) continue;
      s.lat.Add(ElapsedNs(started[idx], BenchClock::now()));
      ++s.done;
      if (line->find("Hello from the mock") == std::string::npos || line->find("\"isError\":true") != std::string::npos) {
        if (++s.bad == 1) Fail("bad reply: " + line->substr(0, 300));
      }
      if (sent < total && !send_one()) Fail("cannot write to keypool-mcp");
    }
    s.wall_s = ElapsedNs(wall0, BenchClock::now()) / 1e9;
    next_id_ += total;
    return s;
  }

 private:
  StdioProcess& server_;
  int64_t next_id_ = 100;
};

std::string InitializeLine() {
  return R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",)"
         R"("capabilities":{},"clientInfo":{"name":"bench","version":"0"}}})";
}

/// Sends initialize, waits for its reply, sends notifications/initialized.
bool Initialize(StdioProcess& server) {
  if (!server.WriteLine(InitializeLine())) return false;
  for (;;) {
    auto line = server.ReadLine(kReadTimeout);
    if (!line) return false;
    if (line->find("\"id\":1") != std::string::npos) break;
  }
  return server.WriteLine(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
}

std::unique_ptr<StdioProcess> SpawnServer(const std::vector<std::string>& wrapper, const std::string& config,
                                          const std::string& home) {
  std::vector<std::string> argv = wrapper;
  for (const char* a : {KPM_BINARY_PATH, "--config", config.c_str(), "--log-level", "info"}) argv.emplace_back(a);
  auto spawn = StdioProcess::Spawn(kpm::testing::ServerOptions(argv[0], {argv.begin() + 1, argv.end()}, home));
  if (!spawn.has_value()) {
    std::fprintf(stderr, "bench_concurrency: cannot start %s: %s\n", argv[0].c_str(), spawn.error().message.c_str());
    return nullptr;
  }
  return std::move(spawn).value();
}

bool SetDefaultStep(httplib::Client& control, const std::string& step) {
  auto res = control.Post("/_mock/default", Json({{"key", "*"}, {"step", step}}).dump(), "application/json");
  return res && res->status == 200;
}

/// The first three fields of /proc/loadavg.
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c + "\n";
}

double Ms(int64_t ns) { return ns / 1e6; }

/// Goals 3 and 4: `rounds` bursts of `calls` at once on a `delay_ms` upstream; the median
/// wall time over the rounds, with the server's peak threads and memory during them.
void Burst(Pipeliner& pipe, httplib::Client& control, int server_pid, int calls, int delay_ms, int rounds,
           const std::string& label, double wall_goal_ms, bool check_resources) {
  if (!SetDefaultStep(control, "delay:" + std::to_string(delay_ms))) return Fail("cannot script the mock");
  Samples walls;
  Sampler sampler(server_pid);
  int bad = 0;
  for (int r = 0; r < rounds; ++r) {
    Series s = pipe.Run(calls, calls);
    walls.Add(static_cast<int64_t>(s.wall_s * 1e9));
    bad += s.bad + (calls - s.done);
  }
  ProcStat peak = sampler.Stop();
  SetDefaultStep(control, "ok");
  const double p50 = Ms(walls.Quantile(0.5));
  Goal(label + ", wall (median of " + std::to_string(rounds) + ")",
       Fmt("%.1f ms", p50) + Fmt(" (max %.1f)", Ms(walls.Max())), Fmt("<= %.0f ms", wall_goal_ms),
       p50 <= wall_goal_ms && bad == 0);
  if (bad != 0) Fail(label + ": " + std::to_string(bad) + " calls failed or were lost");
  if (!check_resources) {
    PrintNote("  server peak during: Threads / VmRSS", std::to_string(peak.threads) + " / " +
                                                           Fmt("%.1f MiB", peak.rss_kb / 1024.0));
    return;
  }
  Goal(label + ", server Threads (peak)", std::to_string(peak.threads), "<= 16", peak.threads <= 16);
  Goal(label + ", server VmRSS peak", Fmt("%.1f MiB", peak.rss_kb / 1024.0) + Fmt(" (HWM %.1f)", peak.hwm_kb / 1024.0),
       "<= 32 MiB", peak.rss_kb <= 32 * 1024);
}

/// Goal 6: `n` fresh servers, each timed from before fork to the initialize reply read.
void SpawnTimes(const std::string& config, const std::string& home, int n) {
  Samples s;
  for (int i = 0; i < n; ++i) {
    auto t0 = BenchClock::now();
    auto server = SpawnServer({}, config, home);
    if (!server) return Fail("spawn failed");
    bool ok = server->WriteLine(InitializeLine());
    std::optional<std::string> line;
    while (ok && (line = server->ReadLine(kReadTimeout)) && line->find("\"id\":1") == std::string::npos) {
    }
    s.Add(ElapsedNs(t0, BenchClock::now()));
    if (!ok || !line) Fail("a spawned server did not answer initialize");
    server->CloseStdin();
    if (server->WaitExit(milliseconds(5000)) != std::optional<int>(0)) Fail("a spawned server did not exit 0");
  }
  const double p50 = Ms(s.Quantile(0.5));
  Goal("6. spawn -> initialize reply (median of " + std::to_string(n) + ")",
       Fmt("%.2f ms", p50) + Fmt(" (max %.2f)", Ms(s.Max())), "<= 10 ms", p50 <= 10.0);
}

std::vector<std::string> Split(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

int Main(int argc, char** argv) {
  bool quick = false;
  int total_calls = 100000;
  std::string mock_path = KPM_MOCK_PATH;
  std::vector<std::string> wrapper;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
      total_calls = 10000;
    } else if (a == "--calls" && i + 1 < argc) {
      total_calls = std::max(1000, std::atoi(argv[++i]));
    } else if (a == "--mock" && i + 1 < argc) {
      mock_path = argv[++i];
    } else if (a == "--server-wrapper" && i + 1 < argc) {
      wrapper = Split(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench_concurrency [--quick] [--calls N] [--mock PATH] [--server-wrapper CMD]\n");
      return 2;
    }
  }
  const int seq_n = quick ? 300 : 3000;
  const int tput_n = quick ? 2000 : 20000;
  kpm::testing::TempDir dir;

  // The mock: its per-request stderr log goes to /dev/null (100k lines would be kept here).
  auto mock_spawn = StdioProcess::Spawn(
      {{"/bin/sh", "-c", "exec '" + mock_path + "' --threads 1024 --exit-on-stdin-eof 2>/dev/null"}, {}, {}});
  if (!mock_spawn.has_value()) return std::fprintf(stderr, "bench_concurrency: cannot start the mock\n"), 1;
  std::unique_ptr<StdioProcess> mock = std::move(mock_spawn).value();
  auto port_line = mock->ReadLine(kReadTimeout);
  Json port_json = port_line ? Json::parse(*port_line, nullptr, false) : Json();
  if (!port_json.is_object() || !port_json.contains("port") || !port_json["port"].is_number_integer()) {
    return std::fprintf(stderr, "bench_concurrency: the mock did not print its port\n"), 1;
  }
  const int port = port_json["port"].get<int>();
  httplib::Client control("127.0.0.1", port);
  control.set_read_timeout(5);

  std::string yaml = "maxConcurrentCalls: 1024\nproviders:\n  bench:\n    type: openai\n    baseUrl: http://127.0.0.1:" +
                     std::to_string(port) + "/v1\n    model: gpt-mock\n    apiKey:\n";
  for (const auto& k : kKeys) yaml += "      - " + k + "\n";
  yaml += "default: bench\n";
  const std::string config = dir.WriteFile("config.yaml", yaml);

  auto server = SpawnServer(wrapper, config, dir.path());
  if (!server || !Initialize(*server)) {
    std::fprintf(stderr, "bench_concurrency: keypool-mcp did not answer initialize\n%s\n",
                 server ? server->Stderr().c_str() : "");
    return 1;
  }
  std::this_thread::sleep_for(milliseconds(300));
  const ProcStat idle = ReadStat(server->pid());
  Pipeliner pipe(*server);
  int calls = 0;

  std::printf("bench_concurrency: mock 127.0.0.1:%d (--threads 1024), keypool-mcp pid %d, load average %s",
              port, server->pid(), LoadAverage().c_str());
  DirectHttp(port, 200, 1);  // warm-up both paths
  calls += pipe.Run(200, 1).done;

  PrintHeader("1./2. complete (stream) vs direct streaming HTTP to the same mock", Unit::kUs);
  Series d1 = DirectHttp(port, seq_n, 1);
  PrintRow("direct HTTP, stream, sequential", d1.lat, Unit::kUs, d1.done, d1.wall_s);
  Series s1 = pipe.Run(seq_n, 1);
  calls += s1.done;
  PrintRow("keypool-mcp stdio, sequential", s1.lat, Unit::kUs, s1.done, s1.wall_s);
  Series d2 = DirectHttp(port, tput_n, 64);
  PrintRow("direct HTTP, stream, 64 clients", d2.lat, Unit::kUs, d2.done, d2.wall_s);
  Series s2 = pipe.Run(tput_n, 64);
  calls += s2.done;
  PrintRow("keypool-mcp stdio, 64 in flight", s2.lat, Unit::kUs, s2.done, s2.wall_s);
  if (d1.bad + d2.bad + s1.bad + s2.bad != 0) Fail("bad answers in series 1/2");

  PrintSection("issue 9 goals");
  const double add50 = (s1.lat.Quantile(0.5) - d1.lat.Quantile(0.5)) / 1e6;
  const double add99 = (s1.lat.Quantile(0.99) - d1.lat.Quantile(0.99)) / 1e6;
  Goal("1. added latency per call, p50", Fmt("%.3f ms", add50), "<= 0.1 ms", add50 <= 0.1);
  Goal("1. added latency per call, p99", Fmt("%.3f ms", add99), "<= 0.5 ms", add99 <= 0.5);
  const double ratio = (s2.done / s2.wall_s) / (d2.done / d2.wall_s);
  Goal("2. throughput at 64 in flight vs direct",
       Fmt("%.0f", s2.done / s2.wall_s) + Fmt(" vs %.0f/s", d2.done / d2.wall_s) + Fmt(" = %.2fx", ratio), ">= 0.5x",
       ratio >= 0.5);

  if (wrapper.empty()) {
    // 5: top up to `total_calls` calls (64 in flight), then read the RSS.
    if (calls < total_calls) calls += pipe.Run(total_calls - calls, 64).done;
    const ProcStat after = ReadStat(server->pid());
    Goal("5. RSS idle (after initialize)", Fmt("%.1f MiB", idle.rss_kb / 1024.0), "<= 10 MiB", idle.rss_kb <= 10 * 1024);
    Goal("5. RSS after " + std::to_string(calls) + " calls" + (quick ? " (--quick, not 100k)" : ""),
         Fmt("%.1f MiB", after.rss_kb / 1024.0) + Fmt(" (HWM %.1f)", after.hwm_kb / 1024.0), "<= 16 MiB",
         after.rss_kb <= 16 * 1024);
    Burst(pipe, control, server->pid(), 64, 100, 5, "3. 64 calls on a 100 ms upstream", 130, false);
    Burst(pipe, control, server->pid(), 512, 1000, 3, "4. 512 calls on a 1 s upstream", 1300, true);
    SpawnTimes(config, dir.path(), 20);
  }

  server->CloseStdin();
  server->DrainStdout(milliseconds(10000));
  if (server->WaitExit(milliseconds(10000)) != std::optional<int>(0)) Fail("keypool-mcp did not exit 0 on stdin EOF");
  mock->CloseStdin();
  if (!mock->WaitExit(milliseconds(5000))) mock->Kill();
  std::printf("bench_concurrency: %d goal(s) missed; load average after %s", g_missed, LoadAverage().c_str());
  if (g_errors != 0) {
    const std::string& err = server->Stderr();
    std::fprintf(stderr, "bench_concurrency: %d problem(s); keypool-mcp stderr tail:\n%s\n", g_errors,
                 err.substr(err.size() > 2000 ? err.size() - 2000 : 0).c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace kpm::bench

int main(int argc, char** argv) { return kpm::bench::Main(argc, argv); }
