// bench_e2e: what keypool-mcp adds to a call, end to end over loopback.
//
// Starts the mock-upstream binary and the keypool-mcp binary (three openai keys pointing
// at the mock, a streaming provider `bench` and a non-streaming one `bench_nostream`),
// then measures:
//   (a) direct HTTP POSTs to the mock's /v1/chat/completions (non-stream and stream),
//       sequential and 8 concurrent clients (cpp-httplib, keep-alive);
//   (b) the same completion through `tools/call complete` over stdio, sequential;
//   (c) 8 calls in flight at once over the one stdio session;
//   (d) failover: key 1 answers 429 with Retry-After: 1, so the first call pays one
//       extra round trip and the next calls none (probe discipline); repeated after
//       each cooldown;
//   (e) keypool-mcp's VmRSS / VmHWM, idle and after 1000+ calls.
// Loopback only (127.0.0.1); every read has a timeout; both children end with it.
//
//   bench_e2e [--n N] [--quick] [--mock PATH]
//     N calls per series (default 500; --quick = 50). --mock: another mock-upstream
//     binary (default: bench_mock_upstream, the mock with TCP_NODELAY on accepted sockets; the stock
//     tests/ build shows a ~40 ms Nagle/delayed-ACK stall per call).

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
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
using kpm::testing::McpSession;
using kpm::testing::StdioProcess;
using std::chrono::milliseconds;

constexpr milliseconds kReadTimeout(10000);
constexpr int kConcurrency = 8;

const std::string kKey1 = "sk-bench-Ka7Qz2XwLp9Rt4VbNcAA1111";
const std::string kKey2 = "sk-bench-Mb3Wy8UvJq5Ps1TdHeBB2222";
const std::string kKey3 = "sk-bench-Pc5Xz1RsTk8Lm2QwJfCC3333";

int g_errors = 0;

void Fail(const std::string& what) {
  ++g_errors;
  std::fprintf(stderr, "bench_e2e: %s\n", what.c_str());
}

/// "VmRSS:     8123 kB" -> "8123 kB", for the fields asked.
std::string ProcStatus(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  std::string rss;
  std::string hwm;
  while (std::getline(in, line)) {
    auto value = [&](std::string_view field) {
      std::string v = line.substr(field.size());
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    };
    if (line.rfind("VmRSS:", 0) == 0) rss = value("VmRSS:");
    if (line.rfind("VmHWM:", 0) == 0) hwm = value("VmHWM:");
  }
  return "VmRSS " + rss + ", VmHWM " + hwm;
}

/// The body keypool-mcp sends for {"prompt": "hi"} to an openai provider.
std::string ChatBody(bool stream) {
  Json body = {{"model", "gpt-mock"}, {"messages", Json::array({{{"role", "user"}, {"content", "hi"}}})}};
  if (stream) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
  }
  return body.dump();
}

/// (a) `total` POSTs spread over `clients` threads, each with its own keep-alive client.
void DirectHttp(int port, bool stream, int total, int clients, int warmup) {
  const std::string body = ChatBody(stream);
  std::vector<Samples> samples(clients);
  std::atomic<int> next{0};
  std::atomic<int> errors{0};
  auto one = [&](httplib::Client& cli) {
    httplib::Headers headers = {{"Authorization", "Bearer " + kKey2}};
    auto res = cli.Post("/v1/chat/completions", headers, body, "application/json");
    bool good = res && res->status == 200 &&
                (stream ? res->body.find("[DONE]") != std::string::npos : res->body.find("\"choices\"") != std::string::npos);
    if (!good) errors.fetch_add(1);
  };
  auto make_client = [&] {
    auto cli = std::make_unique<httplib::Client>("127.0.0.1", port);
    cli->set_keep_alive(true);
    cli->set_tcp_nodelay(true);  // as libcurl does; else each POST waits for a delayed ACK
    cli->set_connection_timeout(5);
    cli->set_read_timeout(10);
    return cli;
  };
  {
    auto cli = make_client();
    for (int i = 0; i < warmup; ++i) one(*cli);
  }
  auto wall0 = BenchClock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto cli = make_client();
      samples[c].Reserve(total);
      while (next.fetch_add(1) < total) {
        auto t0 = BenchClock::now();
        one(*cli);
        samples[c].Add(ElapsedNs(t0, BenchClock::now()));
      }
    });
  }
  for (auto& t : threads) t.join();
  double wall = ElapsedNs(wall0, BenchClock::now()) / 1e9;
  Samples all;
  for (auto& s : samples) all.Merge(s);
  std::string name = std::string("(a) direct HTTP, ") + (stream ? "stream" : "non-stream") +
                     (clients > 1 ? ", " + std::to_string(clients) + " clients" : ", sequential");
  PrintRow(name, all, Unit::kUs, total, wall);
  if (errors.load() != 0) Fail(name + ": " + std::to_string(errors.load()) + " bad answers");
}

/// What one complete result says: number of attempts and the answering key's suffix.
struct CallSummary {
  bool ok = false;
  size_t attempts = 0;
  std::string key;
};

CallSummary Summarize(const std::optional<Json>& reply) {
  CallSummary s;
  if (!reply || !reply->contains("result")) return s;
  const Json& result = (*reply)["result"];
  if (result.value("isError", false)) return s;
  const Json& sc = result.value("structuredContent", Json::object());
  s.ok = sc.value("text", "").find("Hello") != std::string::npos;
  s.attempts = sc.contains("attempts") ? sc["attempts"].size() : 0;
  s.key = sc.value("key", "");
  return s;
}

Json Args(bool stream) {
  Json args = {{"prompt", "hi"}};
  if (!stream) args["provider"] = "bench_nostream";
  return args;
}

/// (b) `n` sequential tools/call complete.
void StdioSequential(McpSession& session, bool stream, int n, int* calls) {
  Samples s;
  s.Reserve(n);
  int bad = 0;
  auto wall0 = BenchClock::now();
  for (int i = 0; i < n; ++i) {
    auto t0 = BenchClock::now();
    auto reply = session.CallTool("complete", Args(stream), kReadTimeout);
    s.Add(ElapsedNs(t0, BenchClock::now()));
    CallSummary sum = Summarize(reply);
    if (!sum.ok || sum.attempts != 1) ++bad;
    if (!reply) break;  // a hung server: stop, don't pile up timeouts
  }
  *calls += static_cast<int>(s.size());
  std::string name = std::string("(b) keypool-mcp stdio, ") + (stream ? "stream" : "non-stream") + ", sequential";
  PrintRow(name, s, Unit::kUs, static_cast<double>(s.size()), ElapsedNs(wall0, BenchClock::now()) / 1e9);
  if (bad != 0) Fail(name + ": " + std::to_string(bad) + " bad results");
}

/// (c) `total` calls with `depth` in flight at once on one session; each call's latency
/// is from its request line written to its reply line read.
void StdioConcurrent(McpSession& session, int total, int depth, int* calls) {
  Samples s;
  s.Reserve(total);
  std::map<int64_t, BenchClock::time_point> started;
  int sent = 0;
  int done = 0;
  int bad = 0;
  const Json params = {{"name", "complete"}, {"arguments", Args(true)}};
  auto send_one = [&] {
    auto t0 = BenchClock::now();
    auto id = session.Send("tools/call", params);
    if (!id) return false;
    started[*id] = t0;
    ++sent;
    return true;
  };
  auto wall0 = BenchClock::now();
  while (sent < std::min(depth, total) && send_one()) {
  }
  while (done < sent) {
    auto message = session.ReadMessage(kReadTimeout);
    if (!message) {
      Fail("(c) no reply within 10 s; " + std::to_string(sent - done) + " calls lost");
      break;
    }
    if (!message->contains("id") || !(*message)["id"].is_number_integer()) continue;  // a notification
    auto it = started.find((*message)["id"].get<int64_t>());
    if (it == started.end()) continue;
    s.Add(ElapsedNs(it->second, BenchClock::now()));
    started.erase(it);
    ++done;
    CallSummary sum = Summarize(message);
    if (!sum.ok) ++bad;
    if (sent < total) send_one();
  }
  *calls += done;
  std::string name = "(c) keypool-mcp stdio, stream, " + std::to_string(depth) + " in flight";
  PrintRow(name, s, Unit::kUs, done, ElapsedNs(wall0, BenchClock::now()) / 1e9);
  if (bad != 0) Fail(name + ": " + std::to_string(bad) + " bad results");
}

bool Script(httplib::Client& control, const std::string& key, const std::vector<std::string>& steps) {
  Json body = {{"key", key}, {"steps", steps}};
  auto res = control.Post("/_mock/script", body.dump(), "application/json");
  return res && res->status == 200;
}

/// (d) `rounds` rounds of: key 1 scripted `429:retry-after=1`; the first call (429 on
/// key 1, then key 2: two upstream round trips), `followers` calls (key 1 cooling:
/// straight to key 2), then a wait for the cooldown and one call that brings key 1
/// back (its half-open trial answers ok) before the next round.
void Failover(McpSession& session, httplib::Client& control, int rounds, int followers, int* calls) {
  Samples first;
  Samples later;
  int bad = 0;
  for (int r = 0; r < rounds; ++r) {
    if (!Script(control, kKey1, {"429:retry-after=1"})) {
      Fail("(d) cannot script the mock");
      return;
    }
    auto t0 = BenchClock::now();
    auto reply = session.CallTool("complete", Args(true), kReadTimeout);
    first.Add(ElapsedNs(t0, BenchClock::now()));
    CallSummary sum = Summarize(reply);
    if (!sum.ok || sum.attempts != 2) ++bad;
    for (int i = 0; i < followers; ++i) {
      t0 = BenchClock::now();
      reply = session.CallTool("complete", Args(true), kReadTimeout);
      later.Add(ElapsedNs(t0, BenchClock::now()));
      sum = Summarize(reply);
      if (!sum.ok || sum.attempts != 1 || sum.key.find("2222") == std::string::npos) ++bad;
    }
    std::this_thread::sleep_for(milliseconds(1100));
    reply = session.CallTool("complete", Args(true), kReadTimeout);  // key 1's trial: ok
    sum = Summarize(reply);
    if (!sum.ok || sum.key.find("1111") == std::string::npos) ++bad;
    *calls += followers + 2;
  }
  PrintRow("(d) failover: first call after key 1's 429", first, Unit::kUs, 0, 0);
  PrintRow("(d) failover: next calls (key 1 cooling)", later, Unit::kUs, 0, 0);
  if (bad != 0) Fail("(d): " + std::to_string(bad) + " calls did not take the expected keys");
}

int Main(int argc, char** argv) {
  int n = 500;
  std::string mock_path = KPM_MOCK_PATH;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      n = 50;
    } else if (std::strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
      n = std::max(10, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--mock") == 0 && i + 1 < argc) {
      mock_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: bench_e2e [--n N] [--quick] [--mock PATH]\n");
      return 2;
    }
  }
  const int warmup = std::max(5, n / 10);
  kpm::testing::TempDir dir;

  // The mock upstream: prints {"port": N}, ends when its stdin closes.
  auto mock_spawn = StdioProcess::Spawn({{mock_path, "--exit-on-stdin-eof"}, {}, {}});
  if (!mock_spawn.has_value()) {
    std::fprintf(stderr, "bench_e2e: cannot start %s: %s\n", mock_path.c_str(), mock_spawn.error().message.c_str());
    return 1;
  }
  std::unique_ptr<StdioProcess> mock = std::move(mock_spawn).value();
  auto port_line = mock->ReadLine(kReadTimeout);
  Json port_json = port_line ? Json::parse(*port_line, nullptr, false) : Json();
  if (!port_json.is_object() || !port_json.contains("port")) {
    std::fprintf(stderr, "bench_e2e: mock-upstream did not print its port\n%s\n", mock->Stderr().c_str());
    return 1;
  }
  const int port = port_json["port"].get<int>();
  httplib::Client control("127.0.0.1", port);
  control.set_read_timeout(5);

  const std::string base = "http://127.0.0.1:" + std::to_string(port) + "/v1";
  std::string keys = "      - " + kKey1 + "\n      - " + kKey2 + "\n      - " + kKey3 + "\n";
  std::string yaml = "providers:\n"
                     "  bench:\n"
                     "    type: openai\n"
                     "    baseUrl: " + base + "\n"
                     "    model: gpt-mock\n"
                     "    apiKey:\n" + keys +
                     "  bench_nostream:\n"
                     "    type: openai\n"
                     "    baseUrl: " + base + "\n"
                     "    model: gpt-mock\n"
                     "    stream: false\n"
                     "    apiKey:\n" + keys +
                     "default: bench\n";
  std::string config = dir.WriteFile("config.yaml", yaml);
  auto server_spawn = StdioProcess::Spawn(kpm::testing::ServerOptions(
      KPM_BINARY_PATH, {"--config", config, "--log-level", "info"}, dir.path()));
  if (!server_spawn.has_value()) {
    std::fprintf(stderr, "bench_e2e: cannot start %s: %s\n", KPM_BINARY_PATH, server_spawn.error().message.c_str());
    return 1;
  }
  std::unique_ptr<StdioProcess> server = std::move(server_spawn).value();
  McpSession session(*server);
  if (!session.Initialize("2025-06-18", kReadTimeout)) {
    std::fprintf(stderr, "bench_e2e: keypool-mcp did not answer initialize\n%s\n", server->Stderr().c_str());
    return 1;
  }
  std::this_thread::sleep_for(milliseconds(300));
  const std::string rss_idle = ProcStatus(server->pid());

  std::printf("bench_e2e: N=%d per series, warm-up %d, mock on 127.0.0.1:%d, keypool-mcp pid %d\n", n, warmup, port,
              server->pid());
  PrintHeader("keypool-mcp vs direct HTTP to the mock, per call", Unit::kUs);
  DirectHttp(port, false, n, 1, warmup);
  DirectHttp(port, true, n, 1, warmup);
  DirectHttp(port, true, n, kConcurrency, warmup);

  int calls = 0;
  for (int i = 0; i < warmup; ++i) {
    session.CallTool("complete", Args(true), kReadTimeout);
    session.CallTool("complete", Args(false), kReadTimeout);
  }
  calls += 2 * warmup;
  StdioSequential(session, false, n, &calls);
  StdioSequential(session, true, n, &calls);
  // (e) after at least 1000 calls (n=500: 2 x 500 + warm-up).
  const std::string rss_after = ProcStatus(server->pid());
  const int calls_at_rss = calls;
  StdioConcurrent(session, n, kConcurrency, &calls);
  const int rounds = std::max(3, n / 50);
  Failover(session, control, rounds, 20, &calls);
  const std::string rss_end = ProcStatus(server->pid());

  PrintSection("keypool-mcp memory (/proc/PID/status)");
  PrintNote("(e) idle, after initialize", rss_idle);
  PrintNote("(e) after " + std::to_string(calls_at_rss) + " complete calls", rss_after);
  PrintNote("(e) at the end, " + std::to_string(calls) + " complete calls", rss_end);

  // A clean shutdown: EOF on stdin, exit 0, for both children.
  server->CloseStdin();
  session.DrainUntilEof(milliseconds(5000));
  auto code = server->WaitExit(milliseconds(5000));
  if (code != std::optional<int>(0)) Fail("keypool-mcp did not exit 0 on stdin EOF");
  if (!session.bad_lines().empty()) Fail(std::to_string(session.bad_lines().size()) + " stdout lines not JSON-RPC");
  mock->CloseStdin();
  if (!mock->WaitExit(milliseconds(5000))) mock->Kill();
  if (g_errors != 0) {
    std::fprintf(stderr, "bench_e2e: %d problem(s); keypool-mcp stderr tail:\n%s\n", g_errors,
                 server->Stderr().substr(server->Stderr().size() > 2000 ? server->Stderr().size() - 2000 : 0).c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace kpm::bench

int main(int argc, char** argv) { return kpm::bench::Main(argc, argv); }
