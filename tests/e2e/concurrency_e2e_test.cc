// End to end, many calls at once (SPEC §2 maxConcurrentCalls, §5): every tools/call runs
// on a fiber of one I/O loop, key_status answers inline, a client that stops reading
// never stalls an upstream transfer, a queued call's deadline counts from its arrival,
// and 400 keys are checked with a bounded number of threads. The built keypool-mcp
// binary against the mock-upstream program (tests/support/e2e_fixture.h).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/e2e_fixture.h"

namespace kpm::testing {
namespace {

using Clock = std::chrono::steady_clock;

/// A generous bound for reading many slow replies (each read still fails a hung server).
constexpr milliseconds kLongRead{60000};

/// Replies seen while reading (notifications skipped), by integer id.
struct Replies {
  std::map<int64_t, Json> by_id;   ///< the last reply of each id
  std::map<int64_t, int> count;    ///< how many replies each id got
  std::vector<int64_t> order;      ///< ids in arrival order
};

/// Reads messages until every id of `wanted` has a reply in `replies`, or `timeout`
/// passes. Every reply read (wanted or not) is counted.
void ReadReplies(E2eServer& server, const std::set<int64_t>& wanted, Replies* replies, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto missing = [&] {
    return std::any_of(wanted.begin(), wanted.end(), [&](int64_t id) { return replies->by_id.count(id) == 0; });
  };
  while (missing() && Clock::now() < deadline) {
    auto m = server.session().ReadMessage(std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
    if (!m) break;
    if (m->contains("method") || !(*m)["id"].is_number_integer()) continue;  // not a reply to us
    const int64_t id = (*m)["id"].get<int64_t>();
    server.Remember(m->dump());
    replies->by_id[id] = *m;
    ++replies->count[id];
    replies->order.push_back(id);
  }
}

/// Sends tools/call `name` with `arguments` (and `meta` as _meta when given); its id.
int64_t SendCall(McpSession& session, const std::string& name, const Json& arguments, const Json& meta = nullptr) {
  Json params = {{"name", name}, {"arguments", arguments}};
  if (!meta.is_null()) params["_meta"] = meta;
  auto id = session.Send("tools/call", params);
  REQUIRE(id.has_value());
  return *id;
}

/// Sends a ping; its id.
int64_t SendPing(McpSession& session) {
  auto id = session.Send("ping");
  REQUIRE(id.has_value());
  return *id;
}

/// The tool result of a reply (which must have one).
const Json& ResultOf(const Json& reply) {
  INFO(reply.dump());
  REQUIRE(reply.contains("result"));
  return reply["result"];
}

/// Provider-level YAML: `deadline_ms` for the whole call, a 1 ms backoff, plus `more`.
std::string ProviderExtra(int deadline_ms, const std::string& more = "") {
  return std::string("    deadlineMs: ").append(std::to_string(deadline_ms)) + "\n" + more +
         "    failover:\n"
         "      backoffMs: 1\n";
}

/// "Threads:" of /proc/<pid>/status, or -1 when it cannot be read.
int ThreadsOf(int pid) {
  std::ifstream status(std::string("/proc/").append(std::to_string(pid)) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  }
  return -1;
}

/// Samples a process's thread count every few milliseconds until Stop().
class ThreadSampler {
 public:
  explicit ThreadSampler(int pid)
      : thread_([this, pid] {
          while (!stop_.load()) {
            const int n = ThreadsOf(pid);
            if (n > 0) {
              peak_.store(std::max(peak_.load(), n));
              samples_.fetch_add(1);
            }
            std::this_thread::sleep_for(milliseconds(2));
          }
        }) {}
  ~ThreadSampler() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  int peak() const { return peak_.load(); }
  int samples() const { return samples_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> peak_{0};
  std::atomic<int> samples_{0};
  std::thread thread_;
};

// --- many calls on one connection -----------------------------------------------------

/// Two-digit model names keep every request body the same length but for the prompt.
std::string ModelOf(int i) {
  char name[8];
  std::snprintf(name, sizeof(name), "m-%02d", i);
  return name;
}

TEST_CASE("64 concurrent completions on one connection are each answered exactly once with their own result",
          "[e2e][concurrency]") {
  constexpr int kCalls = 64;
  MockProcess mock(MockBinary(), 80);
  mock.SetDefault("*", "delay:300");
  E2eServer server(KeypoolBinary(),
                   ConfigYaml({MockProvider(mock, "openai", "openai", "gpt-mock", {kCanary1}, ProviderExtra(30000))}));
  server.Initialize();
  McpSession& session = server.session();

  // Every request goes out before any reply is read. Call i names model m-<i> (the mock
  // echoes it in its chunks) and sends a prompt 4*i bytes longer than call 0's, so the
  // mock's usage (request bytes / 4) is call 0's plus i: both come from the upstream
  // response, so a reply carrying another transfer's answer shows.
  std::vector<int64_t> ids;
  std::set<int64_t> wanted;
  for (int i = 0; i < kCalls; ++i) {
    ids.push_back(SendCall(session, "complete",
                           {{"prompt", std::string("question ").append(4 * static_cast<size_t>(i), 'x')},
                            {"model", ModelOf(i)}}));
    wanted.insert(ids.back());
  }
  Replies replies;
  ReadReplies(server, wanted, &replies, kLongRead);
  // A ping after all of them: any duplicate reply written before its answer is counted too.
  const int64_t ping = SendPing(session);
  ReadReplies(server, {ping}, &replies, kReadTimeout);
  INFO("stderr: " << server.process().Stderr());
  REQUIRE(replies.by_id.count(ping) == 1);

  std::optional<int64_t> tokens0;
  for (int i = 0; i < kCalls; ++i) {
    INFO("call " << i << " id " << ids[i]);
    REQUIRE(replies.by_id.count(ids[i]) == 1);
    CHECK(replies.count[ids[i]] == 1);
    const Json& result = ResultOf(replies.by_id[ids[i]]);
    INFO(result.dump());
    REQUIRE_FALSE(result.value("isError", false));
    CHECK(ResultText(result) == "Hello from the mock upstream.");
    const Json& sc = result["structuredContent"];
    CHECK(sc["model"] == ModelOf(i));
    CHECK(sc["text"] == "Hello from the mock upstream.");
    REQUIRE(sc["usage"]["input_tokens"].is_number_integer());
    const int64_t tokens = sc["usage"]["input_tokens"].get<int64_t>();
    if (!tokens0) tokens0 = tokens;
    CHECK(tokens - *tokens0 == i);
  }
  // No reply for an id nobody asked about (the 64, the ping and initialize's 1).
  for (const auto& [id, n] : replies.count) {
    INFO("id " << id);
    CHECK((wanted.count(id) == 1 || id == ping));
  }
  // Each call reached the upstream exactly once.
  std::multiset<std::string> models;
  for (const auto& r : mock.Requests()) {
    if (r.value("method", "") == "POST") models.insert(r.value("model", ""));
  }
  CHECK(models.size() == kCalls);
  for (int i = 0; i < kCalls; ++i) CHECK(models.count(ModelOf(i)) == 1);
  server.CloseAndExpectCleanExit();
}

TEST_CASE("key_status is answered at once while 64 slow completions are in flight", "[e2e][concurrency]") {
  constexpr int kCalls = 64;
  MockProcess mock(MockBinary(), 80);
  // Held until the call is cancelled (or 30 s pass): none of them can answer first.
  mock.SetDefault("*", "hang:30000");
  E2eServer server(KeypoolBinary(),
                   ConfigYaml({MockProvider(mock, "openai", "openai", "gpt-mock", {kCanary1}, ProviderExtra(60000))}));
  server.Initialize();
  McpSession& session = server.session();

  std::set<int64_t> calls;
  for (int i = 0; i < kCalls; ++i) calls.insert(SendCall(session, "complete", {{"prompt", std::string("slow ").append(std::to_string(i))}}));
  // All 64 are upstream at once, each waiting on its own transfer.
  REQUIRE(mock.WaitForRequests(kCalls, kLongRead));

  const int64_t status_id = SendCall(session, "key_status", Json::object());
  Replies replies;
  ReadReplies(server, {status_id}, &replies, kReadTimeout);
  INFO("stderr: " << server.process().Stderr());
  REQUIRE(replies.by_id.count(status_id) == 1);
  // It is the first reply: no completion answered before it (or instead of it).
  CHECK(replies.order == std::vector<int64_t>{status_id});
  const Json& result = ResultOf(replies.by_id[status_id]);
  CHECK_FALSE(result.value("isError", false));
  auto keys = KeysByLabel(result["structuredContent"]);
  REQUIRE(keys.count("openai#1") == 1);
  CHECK(keys["openai#1"]["state"] == "ready");

  // Cancelled calls get no reply; the server is idle again and answers a ping.
  for (int64_t id : calls) REQUIRE(session.Notify("notifications/cancelled", {{"requestId", id}, {"reason", "test"}}));
  const int64_t ping = SendPing(session);
  ReadReplies(server, {ping}, &replies, kReadTimeout);
  REQUIRE(replies.by_id.count(ping) == 1);
  server.CloseAndExpectCleanExit();
  for (const auto& line : session.lines()) {
    Json m = Json::parse(line, nullptr, false);
    if (m.is_object() && m.contains("id") && m["id"].is_number_integer()) {
      CHECK(calls.count(m["id"].get<int64_t>()) == 0);
    }
  }
}

// --- a client that stops reading ------------------------------------------------------

TEST_CASE("a client that stops reading stdout for 3 s while a stream is in flight leaves the key ready",
          "[e2e][concurrency]") {
  MockProcess mock(MockBinary(), 32);
  // 100 words 50 ms apart: a 5 s stream, well inside idleTimeoutMs between chunks.
  std::string answer;
  for (int i = 0; i < 100; ++i) answer += (i ? " w" : "w") + std::to_string(i);
  mock.Script(kCanary1, {std::string("slow:50:").append(answer), "ok:second answer"});
  E2eServer server(KeypoolBinary(),
                   ConfigYaml({MockProvider(mock, "openai", "openai", "gpt-mock", {kCanary1},
                                            ProviderExtra(30000, "    idleTimeoutMs: 1000\n"))}));
  server.Initialize();
  McpSession& session = server.session();
  // A four-page stdout pipe (with one page, poll() would call it full after one line).
  const int capacity = server.process().SetStdoutPipeSize(4 * 4096);
  REQUIRE(capacity > 0);

  constexpr int kPings = 1000;
  const int64_t streamed = SendCall(session, "complete", {{"prompt", "stream please"}}, {{"progressToken", "stall"}});
  // The stream is flowing once its first progress notification is here.
  bool flowing = false;
  for (const auto give_up = Clock::now() + kReadTimeout; !flowing && Clock::now() < give_up;) {
    auto m = session.ReadMessage(kReadTimeout);
    if (!m) break;
    flowing = m->value("method", "") == "notifications/progress";
  }
  REQUIRE(flowing);

  // From here the client reads nothing for 3 s. 1000 pings owe ~44 KB of replies (which
  // are never dropped), far more than the pipe holds, and the stream keeps offering
  // progress: the server's stdout is full and its writer blocked for the whole stall.
  const auto stall_start = Clock::now();
  for (int i = 0; i < kPings; ++i) {
    REQUIRE(session.SendRaw(std::string(R"({"jsonrpc":"2.0","id":)").append(std::to_string(10000 + i)) + R"(,"method":"ping"})"));
  }
  int unread = -1;
  int still = 0;
  for (const auto give_up = Clock::now() + kReadTimeout; still < 3 && Clock::now() < give_up;) {
    std::this_thread::sleep_for(milliseconds(100));
    const int now = server.process().StdoutUnread();
    still = now == unread && now >= capacity / 2 ? still + 1 : 0;
    unread = now;
  }
  INFO("bytes waiting in the pipe: " << unread << " of " << capacity);
  REQUIRE(still == 3);
  // A second call sent during the stall still reaches the upstream: neither the reading
  // thread nor the I/O loop is stuck writing to the client.
  const int64_t second = SendCall(session, "complete", {{"prompt", "meanwhile"}});
  REQUIRE(mock.WaitForRequests(2, kReadTimeout));
  std::this_thread::sleep_until(stall_start + milliseconds(3000));
  CHECK(server.process().StdoutUnread() >= capacity / 2);  // still nobody read

  // Why this fails if a transfer waited on the client: the stream's body callback
  // reports progress. Were that a blocking write to stdout on the I/O loop's thread, the
  // loop would stop for the 3 s stall: no chunk would be taken from the socket, our
  // clock would see the stream silent for longer than idleTimeoutMs (1000) and end the
  // attempt as a timeout, cooling the key (errorCooldownMs) and failing the call; and
  // the second call could not even start. With the outbox, only the writer thread waits.
  Replies replies;
  ReadReplies(server, {streamed, second}, &replies, kLongRead);
  INFO("stderr: " << server.process().Stderr());
  REQUIRE(replies.by_id.count(streamed) == 1);
  REQUIRE(replies.by_id.count(second) == 1);
  const Json& result = ResultOf(replies.by_id[streamed]);
  INFO(result.dump());
  CHECK_FALSE(result.value("isError", false));
  CHECK(ResultText(result) == answer);
  CHECK(Outcomes(result) == std::vector<std::string>{"ok"});
  const Json& second_result = ResultOf(replies.by_id[second]);
  CHECK_FALSE(second_result.value("isError", false));
  CHECK(ResultText(second_result) == "second answer");
  auto keys = server.KeyStatus();
  REQUIRE(keys.count("openai#1") == 1);
  CHECK(keys["openai#1"]["state"] == "ready");
  CHECK(keys["openai#1"]["failures"] == 0);
  // Every ping was answered: replies are never dropped, however long the client stalls.
  for (int i = 0; i < kPings; ++i) {
    INFO("ping " << 10000 + i);
    CHECK(session.AwaitReply(10000 + i, kReadTimeout).has_value());
  }
  server.CloseAndExpectCleanExit();
}

// --- the queue ------------------------------------------------------------------------

TEST_CASE("a queued call's deadline counts from its arrival not from its start", "[e2e][concurrency]") {
  MockProcess mock(MockBinary(), 8);
  mock.SetDefault("*", "delay:2000");
  E2eServer server(KeypoolBinary(),
                   ConfigYaml({MockProvider(mock, "openai", "openai", "gpt-mock", {kCanary1}, ProviderExtra(3000))},
                              "maxConcurrentCalls: 1\n"));
  server.Initialize();
  McpSession& session = server.session();
  // One runs (2 s upstream), the other queues behind it; both arrived together. The
  // second starts with about 1 s of its 3 s left, less than the 2 s its upstream takes:
  // had its deadline started when it left the queue, it would have succeeded.
  const int64_t first = SendCall(session, "complete", {{"prompt", "first"}});
  const int64_t queued = SendCall(session, "complete", {{"prompt", "queued"}});
  Replies replies;
  ReadReplies(server, {first, queued}, &replies, kLongRead);
  INFO("stderr: " << server.process().Stderr());
  REQUIRE(replies.by_id.count(first) == 1);
  REQUIRE(replies.by_id.count(queued) == 1);
  const Json& ok = ResultOf(replies.by_id[first]);
  INFO(ok.dump());
  CHECK_FALSE(ok.value("isError", false));
  CHECK(ResultText(ok) == "Hello from the mock upstream.");
  const Json& late = ResultOf(replies.by_id[queued]);
  INFO(late.dump());
  CHECK(late.value("isError", false));
  REQUIRE(late["structuredContent"].is_object());
  CHECK(late["structuredContent"]["error"]["class"] == "timeout");
  server.CloseAndExpectCleanExit();
}

// --- 400 keys -------------------------------------------------------------------------

constexpr int kManyKeys = 400;

/// 400 distinct keys, told apart by their last four digits (0001 … 0400).
std::vector<std::string> ManyKeys() {
  std::vector<std::string> keys;
  for (int i = 1; i <= kManyKeys; ++i) {
    char key[32];
    std::snprintf(key, sizeof(key), "sk-many-keys-test-%04d", i);
    keys.push_back(key);
  }
  return keys;
}

/// Every key's GET /models reached the mock exactly once.
void CheckEveryKeyCheckedOnce(MockProcess& mock) {
  std::vector<std::string> seen = mock.KeysSeenOn("/models");
  std::set<std::string> distinct(seen.begin(), seen.end());
  CHECK(seen.size() == kManyKeys);
  CHECK(distinct.size() == kManyKeys);
  CHECK(mock.KeysSeen().empty());  // no completion spent
}

TEST_CASE("check_keys checks 400 keys with at most 16 threads in the server", "[e2e][concurrency]") {
  MockProcess mock(MockBinary(), 32);
  mock.SetDefault("*", "delay:100");  // each health check (GET /models) takes 100 ms
  ServerLaunch launch;
  launch.extra_args = {"--log-level", "info"};
  E2eServer server(KeypoolBinary(),
                   ConfigYaml({MockProvider(mock, "many", "openai", "gpt-mock", ManyKeys(), ProviderExtra(30000))}),
                   launch);
  server.Initialize();
  const int idle_threads = ThreadsOf(server.process().pid());
  REQUIRE(idle_threads > 0);

  ThreadSampler sampler(server.process().pid());
  auto reply = server.session().CallTool("check_keys", Json::object(), kLongRead);
  sampler.Stop();
  INFO("stderr: " << server.process().Stderr());
  INFO("threads: " << idle_threads << " idle, " << sampler.peak() << " at most while checking ("
                   << sampler.samples() << " samples)");
  REQUIRE(reply.has_value());
  server.Remember(reply->dump());
  const Json& result = ResultOf(*reply);
  CHECK_FALSE(result.value("isError", false));
  REQUIRE(sampler.samples() > 10);
  CHECK(sampler.peak() <= 16);

  const Json& checks = result["structuredContent"]["checks"];
  REQUIRE(checks.is_array());
  CHECK(checks.size() == kManyKeys);
  std::set<std::string> checked;
  for (const auto& c : checks) {
    INFO(c.dump());
    CHECK(c["outcome"] == "ok");
    checked.insert(c.value("key", ""));
  }
  CHECK(checked.size() == kManyKeys);
  auto keys = KeysByLabel(result["structuredContent"]);
  CHECK(keys.size() == kManyKeys);
  for (int i = 1; i <= kManyKeys; ++i) {
    const std::string label = std::string("many#").append(std::to_string(i));
    INFO(label);
    REQUIRE(keys.count(label) == 1);
    CHECK(keys[label]["state"] == "ready");
  }
  CheckEveryKeyCheckedOnce(mock);
  server.CloseAndExpectCleanExit();
}

TEST_CASE("the --check flag with 400 keys exits 0 and reports every key", "[e2e][concurrency]") {
  MockProcess mock(MockBinary(), 32);
  mock.SetDefault("*", "delay:100");
  TempDir home;
  const std::string config = home.WriteFile(
      "config.yaml",
      ConfigYaml({MockProvider(mock, "many", "openai", "gpt-mock", ManyKeys(), ProviderExtra(30000))}));
  auto spawned = StdioProcess::Spawn(
      ServerOptions(KeypoolBinary(), {"--check", "--json", "--config", config}, home.path()));
  REQUIRE(spawned.has_value());
  auto p = std::move(spawned).value();
  p->CloseStdin();
  p->DrainStdout(kLongRead);
  const auto code = p->WaitExit(kLongRead);
  const std::string out = p->StdoutSoFar();
  INFO("stdout:\n" << out << "\nstderr:\n" << p->Stderr());
  CHECK(code == std::optional<int>(0));
  const Json report = Json::parse(out, nullptr, false);
  REQUIRE(report.is_object());
  CHECK(report["ok"] == true);
  REQUIRE(report["providers"].size() == 1);
  std::set<std::string> ok_labels;
  for (const Json& k : report["providers"][0]["keys"]) {
    if (k["outcome"] == "ok" && k["usable"] == true) ok_labels.insert(k["label"].get<std::string>());
  }
  CHECK(ok_labels.size() == kManyKeys);
  for (int i = 1; i <= kManyKeys; ++i) CHECK(ok_labels.count(std::string("many#").append(std::to_string(i))) == 1);
  CheckEveryKeyCheckedOnce(mock);
}

}  // namespace
}  // namespace kpm::testing
