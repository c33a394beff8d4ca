// RedisBackend (state/redis_backend.h) against a real redis-server on 127.0.0.1 and an
// ephemeral port (tests/support/redis_server.h). A missing redis-server fails these
// tests; it never skips them.

#include "state/redis_backend.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/redis_server.h"

namespace kpm::state {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;
using testing::RedisServer;
using testing::RespReply;

void StartOrFail(RedisServer& server) {
  auto started = server.Start();
  if (!started) FAIL("cannot start redis-server: " << started.error().message);
}

RedisOptions OptionsFor(const RedisServer& server, const std::string& prefix) {
  auto options = ParseRedisUrl(server.url(), prefix);
  REQUIRE(options.has_value());
  return *options;
}

/// Polls `done` until it holds or `bound` passes (a bound for a broken build, not a figure).
bool Eventually(const std::function<bool()>& done, std::chrono::milliseconds bound = 10s) {
  auto deadline = SteadyClock::now() + bound;
  while (SteadyClock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

std::string Increment(const std::optional<std::string>& current) {
  return std::to_string(current ? std::stoi(*current) + 1 : 1);
}

int64_t Pttl(const RedisServer& server, const std::string& key) {
  auto reply = server.Command({"PTTL", key});
  REQUIRE(reply.has_value());
  REQUIRE(reply->type == RespReply::Type::kInteger);
  return reply->integer;
}

std::vector<std::string> Ids(const std::vector<Entry>& entries) {
  std::vector<std::string> ids;
  for (const auto& e : entries) ids.push_back(e.id);
  return ids;
}

TEST_CASE("an update on redis is atomic across two backends racing on one entry", "[integration][state][redis]") {
  RedisServer server;
  StartOrFail(server);
  RedisBackend a(OptionsFor(server, "race")), b(OptionsFor(server, "race"));
  REQUIRE(a.Open().has_value());
  REQUIRE(b.Open().has_value());

  constexpr int kPerBackend = 300;
  std::atomic<int> calls{0}, failures{0};
  std::string first_error;  // written by the first failing thread only
  std::atomic<bool> go{false};
  auto run = [&](RedisBackend& backend) {
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < kPerBackend; ++i) {
      auto stored = backend.Update("counter", [&](const std::optional<std::string>& current) {
        calls.fetch_add(1);
        return Increment(current);
      });
      if (!stored && failures.fetch_add(1) == 0) first_error = stored.error().message;
    }
  };
  std::thread ta(run, std::ref(a)), tb(run, std::ref(b));
  go.store(true);
  ta.join();
  tb.join();

  INFO("fn ran " << calls.load() << " times for " << 2 * kPerBackend << " updates");
  INFO("first error: " << first_error);
  CHECK(failures.load() == 0);
  auto final_value = a.Read("counter");
  REQUIRE(final_value.has_value());
  REQUIRE(final_value->has_value());
  CHECK(**final_value == std::to_string(2 * kPerBackend));
  CHECK(calls.load() >= 2 * kPerBackend);
}

TEST_CASE("an update on redis runs again when another backend wrote in between", "[integration][state][redis]") {
  RedisServer server;
  StartOrFail(server);
  RedisBackend a(OptionsFor(server, "retry")), b(OptionsFor(server, "retry"));

  std::vector<std::optional<std::string>> seen;
  auto stored = a.Update("k", [&](const std::optional<std::string>& current) {
    seen.push_back(current);
    // A write after a's WATCH and before its EXEC: a's transaction must fail and run again.
    if (seen.size() == 1) REQUIRE(b.Update("k", [](const auto&) { return std::string("from-b"); }).has_value());
    return "from-a after " + current.value_or("nothing");
  });
  REQUIRE(stored.has_value());
  REQUIRE(seen.size() == 2);
  CHECK_FALSE(seen[0].has_value());
  CHECK(seen[1] == std::optional<std::string>("from-b"));
  CHECK(*stored == "from-a after from-b");
  auto read = b.Read("k");
  REQUIRE(read.has_value());
  CHECK(*read == std::optional<std::string>("from-a after from-b"));
}

TEST_CASE("an update on redis that always loses its race gives up with an error", "[integration][state][redis]") {
  RedisServer server;
  StartOrFail(server);
  RedisBackend a(OptionsFor(server, "lose")), b(OptionsFor(server, "lose"));
  int calls = 0;
  auto stored = a.Update("k", [&](const std::optional<std::string>& current) {
    ++calls;
    REQUIRE(b.Update("k", Increment).has_value());
    return current.value_or("") + "a";
  });
  REQUIRE_FALSE(stored.has_value());
  CHECK(stored.error().kind == ErrorKind::kIo);
  CHECK(calls == RedisBackend::kMaxUpdateAttempts);
  auto read = a.Read("k");  // only b's writes landed; a's connection still works
  REQUIRE(read.has_value());
  CHECK(*read == std::optional<std::string>(std::to_string(RedisBackend::kMaxUpdateAttempts)));
}

TEST_CASE("every redis entry carries a time to live", "[integration][state][redis]") {
  RedisServer server;
  StartOrFail(server);
  RedisBackend backend(OptionsFor(server, "ttl"));
  REQUIRE(backend.Update("one", Increment).has_value());
  REQUIRE(backend.Update("two", Increment).has_value());
  REQUIRE(backend.Secret().has_value());

  for (const std::string key : {"ttl:key:one", "ttl:key:two", "ttl:secret"}) {
    INFO(key);
    int64_t ttl = Pttl(server, key);
    CHECK(ttl > kEntryTtlMs - 60 * 1000);  // -1 would be no TTL, -2 no key
    CHECK(ttl <= kEntryTtlMs);
  }

  SECTION("an update refreshes the time to live of the entry and of the secret") {
    REQUIRE(server.Command({"PEXPIRE", "ttl:key:one", "5000"}).has_value());
    REQUIRE(server.Command({"PEXPIRE", "ttl:secret", "5000"}).has_value());
    REQUIRE(backend.Update("one", Increment).has_value());
    CHECK(Pttl(server, "ttl:key:one") > kEntryTtlMs - 60 * 1000);
    CHECK(Pttl(server, "ttl:secret") > kEntryTtlMs - 60 * 1000);
  }
}

TEST_CASE("the redis secret is created once and shared by every backend", "[integration][state][redis]") {
  RedisServer server;
  StartOrFail(server);

  // Two fresh backends asking at the same moment still agree: SET NX lets one win.
  RedisBackend a(OptionsFor(server, "sec")), b(OptionsFor(server, "sec"));
  Result<std::string> sa = MakeError(ErrorKind::kInternal, "unset"), sb = sa;
  std::thread ta([&] { sa = a.Secret(); }), tb([&] { sb = b.Secret(); });
  ta.join();
  tb.join();
  REQUIRE(sa.has_value());
  REQUIRE(sb.has_value());
  CHECK(sa->size() == 32);
  CHECK(*sa == *sb);

  RedisBackend later(OptionsFor(server, "sec"));
  auto sl = later.Secret();
  REQUIRE(sl.has_value());
  CHECK(*sl == *sa);
  auto again = a.Secret();
  REQUIRE(again.has_value());
  CHECK(*again == *sa);

  auto stored = server.Command({"GET", "sec:secret"});
  REQUIRE(stored.has_value());
  REQUIRE(stored->type == RespReply::Type::kString);
  CHECK(stored->text.size() == 64);

  RedisBackend other_prefix(OptionsFor(server, "sec2"));
  auto so = other_prefix.Secret();
  REQUIRE(so.has_value());
  CHECK(*so != *sa);
}

TEST_CASE("a write by one redis backend changes the version another one sees", "[integration][state][redis]") {
  RedisServer server;
  StartOrFail(server);
  RedisBackend a(OptionsFor(server, "ver")), b(OptionsFor(server, "ver"));
  CHECK_FALSE(b.Version().has_value());  // not open yet
  REQUIRE(a.Open().has_value());
  REQUIRE(b.Open().has_value());
  auto v0 = b.Version();
  REQUIRE(v0.has_value());
  auto same = b.Version();
  REQUIRE(same.has_value());
  CHECK(*same == *v0);  // nothing written: nothing changed

  REQUIRE(a.Update("k", Increment).has_value());
  CHECK(Eventually([&] {
    auto v = b.Version();
    return v.has_value() && *v != *v0;
  }));

  auto v1 = b.Version();
  REQUIRE(v1.has_value());
  auto removed = a.Remove({"k"});
  REQUIRE(removed.has_value());
  CHECK(*removed == 1);
  CHECK(Eventually([&] {
    auto v = b.Version();
    return v.has_value() && *v != *v1;
  }));
}

TEST_CASE("an unreachable redis is an error within its timeout", "[integration][state][redis]") {
  SECTION("nothing listens on the port") {
    RedisServer server;
    StartOrFail(server);
    server.Stop();
    RedisBackend backend(OptionsFor(server, "down"));
    auto start = SteadyClock::now();
    auto opened = backend.Open();
    auto read = backend.Read("k");
    auto elapsed = SteadyClock::now() - start;
    REQUIRE_FALSE(opened.has_value());
    CHECK(opened.error().kind == ErrorKind::kIo);
    CHECK_THAT(opened.error().message, Catch::Contains("127.0.0.1:" + std::to_string(server.port())));
    CHECK_THAT(opened.error().message, Catch::Contains("refused"));
    REQUIRE_FALSE(read.has_value());
    CHECK_FALSE(backend.Version().has_value());
    CHECK(elapsed < 2s);
  }

  SECTION("a server that accepts and never answers") {
    // The kernel completes the handshake into the backlog; nobody ever reads.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    RedisOptions options;
    options.port = ntohs(addr.sin_port);
    options.prefix = "silent";
    RedisBackend backend(options);
    auto start = SteadyClock::now();
    auto opened = backend.Open();
    auto read = backend.Read("k");
    auto elapsed = SteadyClock::now() - start;
    ::close(fd);
    REQUIRE_FALSE(opened.has_value());
    CHECK(opened.error().kind == ErrorKind::kIo);
    CHECK_THAT(opened.error().message, Catch::Contains("no answer within 250 ms"));
    REQUIRE_FALSE(read.has_value());
    CHECK(elapsed < 2s);  // two calls, each bounded by the 250 ms command timeout
  }
}

TEST_CASE("a redis backend reconnects by itself after a restart", "[integration][state][redis]") {
  RedisServer server;
  StartOrFail(server);
  RedisBackend backend(OptionsFor(server, "restart")), other(OptionsFor(server, "restart"));
  REQUIRE(backend.Update("k", Increment).has_value());
  REQUIRE(other.Open().has_value());
  auto before = backend.Version();
  REQUIRE(before.has_value());

  server.Stop();
  auto read = backend.Read("k");
  REQUIRE_FALSE(read.has_value());
  CHECK(read.error().kind == ErrorKind::kIo);
  CHECK_FALSE(backend.Update("k", Increment).has_value());
  // The subscriber sees the connection close: the store is down, not stale.
  CHECK(Eventually([&] { return !backend.Version().has_value(); }));

  StartOrFail(server);  // same port, empty (no persistence)
  REQUIRE(backend.Open().has_value());
  auto stored = backend.Update("k", Increment);
  REQUIRE(stored.has_value());
  CHECK(*stored == "1");
  Result<uint64_t> after = MakeError(ErrorKind::kInternal, "unset");
  CHECK(Eventually([&] {
    after = backend.Version();
    return after.has_value();
  }));
  REQUIRE(after.has_value());
  CHECK(*after != *before);

  // Subscribed again for real: another backend's write moves the version. `other` still
  // holds the connection the old server closed: its first call fails, the next reconnects.
  CHECK_FALSE(other.Read("k").has_value());
  REQUIRE(other.Update("k", Increment).has_value());
  CHECK(Eventually([&] {
    auto v = backend.Version();
    return v.has_value() && *v != *after;
  }));
}

TEST_CASE("redis list returns every entry under its prefix and remove deletes them", "[integration][state][redis]") {
  RedisServer server;
  StartOrFail(server);
  // A prefix with glob characters must match itself only, not "kpX".
  RedisBackend backend(OptionsFor(server, "kp*")), neighbour(OptionsFor(server, "kpX"));
  for (const std::string id : {"b", "a", "c"}) {
    REQUIRE(backend.Update(id, [&](const auto&) { return "value of " + id; }).has_value());
  }
  REQUIRE(backend.Secret().has_value());  // "kp*:secret" is not an entry
  REQUIRE(neighbour.Update("z", Increment).has_value());

  auto listed = backend.List();
  REQUIRE(listed.has_value());
  REQUIRE(Ids(*listed) == std::vector<std::string>{"a", "b", "c"});
  CHECK((*listed)[1].value == "value of b");

  auto removed = backend.Remove({"a", "missing", "c"});
  REQUIRE(removed.has_value());
  CHECK(*removed == 2);
  listed = backend.List();
  REQUIRE(listed.has_value());
  CHECK(Ids(*listed) == std::vector<std::string>{"b"});
  auto gone = backend.Read("a");
  REQUIRE(gone.has_value());
  CHECK_FALSE(gone->has_value());
  auto kept = neighbour.List();
  REQUIRE(kept.has_value());
  CHECK(Ids(*kept) == std::vector<std::string>{"z"});

  SECTION("more entries than one scan batch") {
    constexpr int kMany = 1234;
    for (int i = 0; i < kMany; ++i) REQUIRE(neighbour.Update(std::string("n").append(std::to_string(i)), Increment).has_value());
    auto all = neighbour.List();
    REQUIRE(all.has_value());
    CHECK(all->size() == kMany + 1);
    std::vector<std::string> ids;
    for (int i = 0; i < kMany; ++i) ids.push_back(std::string("n").append(std::to_string(i)));
    auto many = neighbour.Remove(ids);
    REQUIRE(many.has_value());
    CHECK(*many == kMany);
  }
}

TEST_CASE("a redis password is used and never shown", "[integration][state][redis]") {
  const std::string password = "kpm-canary-redis-pw-7f3a";
  RedisServer server(password);
  StartOrFail(server);

  RedisBackend backend(OptionsFor(server, "pw"));
  CHECK_THAT(backend.Describe(), !Catch::Contains(password));
  CHECK(backend.Describe() == "redis 127.0.0.1:" + std::to_string(server.port()) + "/0 prefix pw");
  REQUIRE(backend.Update("k", Increment).has_value());
  CHECK(backend.Version().has_value());  // the subscriber authenticated too

  RedisOptions wrong = OptionsFor(server, "pw");
  wrong.password = "kpm-canary-wrong-pw-19c2";
  RedisBackend refused(wrong);
  auto opened = refused.Open();
  REQUIRE_FALSE(opened.has_value());
  CHECK(opened.error().kind == ErrorKind::kIo);
  CHECK_THAT(opened.error().message, Catch::Contains("AUTH"));
  CHECK_THAT(opened.error().message, !Catch::Contains(wrong.password));

  RedisOptions none = OptionsFor(server, "pw");
  none.password.clear();
  RedisBackend anonymous(none);
  auto denied = anonymous.Read("k");
  REQUIRE_FALSE(denied.has_value());
  CHECK_THAT(denied.error().message, Catch::Contains("NOAUTH"));
}

TEST_CASE("redis urls are parsed and bad ones are config errors", "[integration][state][redis]") {
  struct Good {
    std::string url, host, user, password;
    int port, db;
  };
  for (const Good& g : std::vector<Good>{
           {"redis://localhost", "localhost", "", "", 6379, 0},
           {"redis://10.0.0.5:6380/3", "10.0.0.5", "", "", 6380, 3},
           {"redis://:s%40cret@h:1/", "h", "", "s@cret", 1, 0},
           {"redis://:p@ss@h/2", "h", "", "p@ss", 6379, 2},
           {"redis://alice:pw@cache.internal:6379/0", "cache.internal", "alice", "pw", 6379, 0},
           {"redis://[::1]:7000/1", "::1", "", "", 7000, 1},
       }) {
    INFO(g.url);
    auto o = ParseRedisUrl(g.url, "keypool");
    REQUIRE(o.has_value());
    CHECK(o->host == g.host);
    CHECK(o->port == g.port);
    CHECK(o->db == g.db);
    CHECK(o->username == g.user);
    CHECK(o->password == g.password);
    CHECK(o->prefix == "keypool");
  }
  auto v6 = ParseRedisUrl("redis://[::1]:7000/1", "p");
  REQUIRE(v6.has_value());
  CHECK(RedisBackend(*v6).Describe() == "redis [::1]:7000/1 prefix p");

  const std::string secret = "hunter2-canary";
  for (const std::string& bad : std::vector<std::string>{
           "http://h:6379", "rediss://:" + secret + "@h", "redis://:" + secret + "@", "redis://" + secret + "@h",
           "redis://:" + secret + "@h:port", "redis://h:0", "redis://h:70000", "redis://:" + secret + "@h/x",
           "redis://h/0?timeout=1", "redis://:" + secret + "@h:" + secret, "redis://:%zz@h", "redis://::1:6379",
           "redis://h:"}) {
    INFO(bad);
    auto o = ParseRedisUrl(bad, "keypool");
    REQUIRE_FALSE(o.has_value());
    CHECK(o.error().kind == ErrorKind::kConfig);
    CHECK_THAT(o.error().message, Catch::StartsWith("redis"));
    CHECK_THAT(o.error().message, !Catch::Contains(secret));
  }
  auto no_prefix = ParseRedisUrl("redis://h", "");
  REQUIRE_FALSE(no_prefix.has_value());
  CHECK(no_prefix.error().kind == ErrorKind::kConfig);
}

TEST_CASE("a redis backend stops its subscriber promptly", "[integration][state][redis]") {
  RedisServer server;
  StartOrFail(server);
  SECTION("while subscribed") {
    auto backend = std::make_unique<RedisBackend>(OptionsFor(server, "stop"));
    REQUIRE(backend->Open().has_value());
    REQUIRE(backend->Version().has_value());
    auto start = SteadyClock::now();
    backend.reset();
    CHECK(SteadyClock::now() - start < 500ms);  // the subscriber's poll alone lasts 1 s
  }
  SECTION("while waiting to reconnect") {
    auto backend = std::make_unique<RedisBackend>(OptionsFor(server, "stop"));
    REQUIRE(backend->Open().has_value());
    server.Stop();
    REQUIRE(Eventually([&] { return !backend->Version().has_value(); }));
    std::this_thread::sleep_for(300ms);  // into the backoff
    auto start = SteadyClock::now();
    backend.reset();
    CHECK(SteadyClock::now() - start < 500ms);
  }
}

}  // namespace
}  // namespace kpm::state
