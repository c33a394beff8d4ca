// Key state shared by real server processes (issue 10, docs/state.md): two or three
// keypool-mcp binaries on one store — a SQLite file, or a real redis-server the test
// starts on a loopback port — against one mock upstream. What one process learns
// (a 429, a revoked key, a reset), the others act on without an upstream attempt.
// Tagged [state]; the Redis cases also [redis].

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/e2e_fixture.h"
#include "tests/support/redis_server.h"

namespace kpm::testing {
namespace {

const std::string k1 = Last4(kCanary1);
const std::string k2 = Last4(kCanary2);

/// Where the shared state lives for one test: a SQLite file in a temp dir, or a real
/// redis-server (started here, stopped with the object).
class SharedState {
 public:
  explicit SharedState(const std::string& kind) : kind_(kind) {
    if (kind == "redis") {
      redis_ = std::make_unique<RedisServer>();
      Status s = redis_->Start();
      INFO((s ? std::string() : s.error().message));
      REQUIRE(s.has_value());
    }
  }
  const std::string& kind() const { return kind_; }
  /// The top-level `state:` line of the config.
  std::string Yaml() const {
    if (redis_) return "state: {type: redis, url: \"" + redis_->url() + "\", prefix: kpmtest}\n";
    return "state: {type: sqlite, path: \"" + dir_.path() + "/state.db\"}\n";
  }
  RedisServer& redis() { return *redis_; }
  std::string sqlite_path() const { return dir_.path() + "/state.db"; }

 private:
  std::string kind_;
  TempDir dir_;
  std::unique_ptr<RedisServer> redis_;
};

/// One mock upstream, one shared store, any number of keypool-mcp processes on both.
class Rig {
 public:
  explicit Rig(const std::string& kind, std::string provider_extra = "", size_t keys = 2)
      : state(kind), mock(MockBinary()), provider_extra_(std::move(provider_extra)) {
    keys_.assign(kCanaries.begin(), kCanaries.begin() + static_cast<long>(keys));
  }

  std::string Config() const {
    return ConfigYaml({MockProvider(mock, "openai", "openai", "gpt-mock", keys_, kFastFailover + provider_extra_)},
                      state.Yaml());
  }
  std::unique_ptr<E2eServer> Start() {
    auto s = std::make_unique<E2eServer>(KeypoolBinary(), Config());
    s->Initialize();
    return s;
  }
  /// `keypool-mcp status ARGS --config` of a server's config, run to its exit.
  std::unique_ptr<StdioProcess> Status(const E2eServer& server, std::vector<std::string> args) {
    args.insert(args.begin(), "status");
    args.push_back("--config");
    args.push_back(server.config_path());
    return RunToExit(KeypoolBinary(), args, home_);
  }
  /// The keys the mock saw since the last call, and forgets them.
  std::vector<std::string> TakeKeysSeen() {
    auto seen = mock.KeysSeen();
    mock.Reset();
    return seen;
  }

  SharedState state;
  MockProcess mock;

 private:
  std::string provider_extra_;
  std::vector<std::string> keys_;
  TempDir home_;
};

std::string State(E2eServer& s, const std::string& label) { return s.KeyStatus()[label]["state"].get<std::string>(); }

/// A change one process wrote reaches another within this (Redis: a pub/sub message).
void AwaitState(E2eServer& s, const std::string& label, const std::string& state) {
  for (int i = 0; i < 100 && State(s, label) != state; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(State(s, label) == state);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_CASE("a 429 seen by one server process makes another skip that key", "[e2e][state]") {
  const std::string kind = GENERATE(as<std::string>{}, "sqlite", "redis");
  Rig rig(kind);
  auto a = rig.Start();
  auto b = rig.Start();
  rig.mock.Script(kCanary1, {"429:retry-after=600"});
  Json first = a->Complete();
  CHECK(Outcomes(first) == std::vector<std::string>{"rate_limited", "ok"});
  CHECK(rig.TakeKeysSeen() == std::vector<std::string>{k1, k2});

  AwaitState(*b, "openai#1", "cooling_down");
  Json second = b->Complete();
  CHECK(Outcomes(second) == std::vector<std::string>{"ok"});
  CHECK(rig.TakeKeysSeen() == std::vector<std::string>{k2});  // no attempt on key 1
  a->CloseAndExpectCleanExit();
  b->CloseAndExpectCleanExit();
}

TEST_CASE("the half-open trial after a cooldown is sent by exactly one server process", "[e2e][state]") {
  const std::string kind = GENERATE(as<std::string>{}, "sqlite", "redis");
  Rig rig(kind, "      rateLimitCooldownMs: 300\n");
  auto a = rig.Start();
  auto b = rig.Start();
  rig.mock.Script(kCanary1, {"429", "delay:1500"});  // the trial answers slowly
  a->Complete();
  rig.TakeKeysSeen();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // the cooldown is over
  rig.mock.Script(kCanary1, {"delay:1500"});
  auto ida = a->session().Send("tools/call", {{"name", "complete"}, {"arguments", {{"prompt", "hi"}}}});
  auto idb = b->session().Send("tools/call", {{"name", "complete"}, {"arguments", {{"prompt", "hi"}}}});
  REQUIRE(ida);
  REQUIRE(idb);
  auto ra = a->session().AwaitReply(*ida);
  auto rb = b->session().AwaitReply(*idb);
  REQUIRE(ra);
  REQUIRE(rb);
  CHECK_FALSE((*ra)["result"].value("isError", false));
  CHECK_FALSE((*rb)["result"].value("isError", false));
  auto seen = rig.TakeKeysSeen();
  INFO("keys seen: " << Json(seen).dump());
  CHECK(std::count(seen.begin(), seen.end(), k1) == 1);  // one trial, machine-wide
  CHECK(std::count(seen.begin(), seen.end(), k2) == 1);
}

TEST_CASE("a restart keeps every cooldown and disabled key and status --reset brings one back for all",
          "[e2e][state]") {
  const std::string kind = GENERATE(as<std::string>{}, "sqlite", "redis");
  Rig rig(kind, "", 3);
  {
    auto a = rig.Start();
    rig.mock.Script(kCanary1, {"401"});
    rig.mock.Script(kCanary2, {"429:retry-after=600"});
    CHECK(Outcomes(a->Complete()) == std::vector<std::string>{"auth_error", "rate_limited", "ok"});
    a->CloseAndExpectCleanExit();
  }
  rig.TakeKeysSeen();
  auto a = rig.Start();  // the restarted process
  auto b = rig.Start();
  auto keys = a->KeyStatus();
  CHECK(keys["openai#1"]["state"] == "disabled");
  CHECK(keys["openai#2"]["state"] == "cooling_down");
  CHECK(keys["openai#3"]["state"] == "ready");
  CHECK(Outcomes(b->Complete()) == std::vector<std::string>{"ok"});
  CHECK(rig.TakeKeysSeen() == std::vector<std::string>{Last4(kCanary3)});

  // `status` in a third process shows the same, then resets key 1 for everyone.
  auto status = rig.Status(*a, {"--json"});
  INFO("status stderr: " << status->Stderr());
  REQUIRE(status->WaitExit(milliseconds(0)) == std::optional<int>(0));
  Json table = Json::parse(status->StdoutSoFar());
  REQUIRE(table["keys"].size() == 3);
  CHECK(table["keys"][0]["label"] == "openai#1");
  CHECK(table["keys"][0]["state"] == "disabled");
  CHECK(table["keys"][1]["state"] == "cooling_down");
  CHECK_FALSE(FindSecret(status->StdoutSoFar() + status->Stderr(), kCanaries).has_value());

  auto reset = rig.Status(*a, {"--reset", "openai#1"});
  INFO("reset stderr: " << reset->Stderr());
  CHECK(reset->WaitExit(milliseconds(0)) == std::optional<int>(0));
  AwaitState(*a, "openai#1", "ready");
  AwaitState(*b, "openai#1", "ready");
  CHECK(Outcomes(a->Complete()) == std::vector<std::string>{"ok"});
  CHECK(Outcomes(b->Complete()) == std::vector<std::string>{"ok"});
  CHECK(rig.TakeKeysSeen() == std::vector<std::string>{k1, k1});

  auto unknown = rig.Status(*a, {"--reset", "openai#9"});
  CHECK(unknown->WaitExit(milliseconds(0)) == std::optional<int>(2));
  CHECK(unknown->Stderr().find("openai#1") != std::string::npos);  // it lists what exists
}

TEST_CASE("an rpm limit counts the calls of every server process", "[e2e][state]") {
  const std::string kind = GENERATE(as<std::string>{}, "sqlite", "redis");
  Rig rig(kind, "    limits: {rpm: 3}\n");
  auto a = rig.Start();
  auto b = rig.Start();
  a->Complete();
  b->Complete();
  a->Complete();
  CHECK(rig.TakeKeysSeen() == std::vector<std::string>{k1, k1, k1});
  AwaitState(*b, "openai#1", "cooling_down");
  Json fourth = b->Complete();
  CHECK(Outcomes(fourth) == std::vector<std::string>{"ok"});
  CHECK(rig.TakeKeysSeen() == std::vector<std::string>{k2});  // no attempt on key 1
  auto keys = b->KeyStatus();
  CHECK(keys["openai#1"]["reason"].get<std::string>().find("at its rpm limit") != std::string::npos);
  CHECK(keys["openai#1"]["ready_in_ms"].get<int64_t>() > 0);
}

TEST_CASE("with strategy sticky each server process keeps its own key until it fails", "[e2e][state]") {
  const std::string kind = GENERATE(as<std::string>{}, "sqlite", "redis");
  Rig rig(kind, "    strategy: sticky\n");
  auto a = rig.Start();
  auto b = rig.Start();
  a->Complete();
  auto first = rig.TakeKeysSeen();
  REQUIRE(first.size() == 1);
  const std::string mine_a = first[0];
  b->Complete();
  auto second = rig.TakeKeysSeen();
  REQUIRE(second.size() == 1);
  const std::string mine_b = second[0];
  CHECK(mine_a != mine_b);  // they spread over the keys
  for (int i = 0; i < 3; ++i) {
    a->Complete();
    b->Complete();
  }
  CHECK(rig.TakeKeysSeen() == std::vector<std::string>{mine_a, mine_b, mine_a, mine_b, mine_a, mine_b});

  // a's key 429s: a moves to the other key and stays there.
  rig.mock.Script(mine_a == k1 ? kCanary1 : kCanary2, {"429:retry-after=1"});
  CHECK(Outcomes(a->Complete()) == std::vector<std::string>{"rate_limited", "ok"});
  CHECK(rig.TakeKeysSeen() == std::vector<std::string>{mine_a, mine_b});
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // its old key is back...
  a->Complete();
  a->Complete();
  b->Complete();
  CHECK(rig.TakeKeysSeen() == std::vector<std::string>{mine_b, mine_b, mine_b});  // ...but a stays
}

TEST_CASE("the shared store holds no key bytes", "[e2e][state]") {
  const std::string kind = GENERATE(as<std::string>{}, "sqlite", "redis");
  Rig rig(kind, "", 3);
  auto a = rig.Start();
  rig.mock.Script(kCanary1, {"echo_key"});  // the upstream echoes the key in its error
  rig.mock.Script(kCanary2, {"429:retry-after=600"});
  CHECK(Outcomes(a->Complete()) == std::vector<std::string>{"auth_error", "rate_limited", "ok"});
  a->CloseAndExpectCleanExit();

  std::string bytes;
  if (kind == "sqlite") {
    bytes = ReadFile(rig.state.sqlite_path()) + ReadFile(rig.state.sqlite_path() + "-wal");
  } else {
    auto keys = rig.state.redis().Command({"KEYS", "*"});
    REQUIRE(keys);
    REQUIRE(keys->elements.size() >= 4);  // three keys and the secret
    for (const RespReply& k : keys->elements) {
      bytes += k.text + "\n";
      auto value = rig.state.redis().Command({"GET", k.text});  // the value as stored
      REQUIRE(value);
      bytes += value->text + "\n";
      auto dump = rig.state.redis().Command({"DUMP", k.text});  // and as serialised (may be LZF-compressed)
      REQUIRE(dump);
      bytes += dump->text + "\n";
    }
  }
  CHECK(bytes.find("rate limited") != std::string::npos);  // the state is there...
  CHECK_FALSE(FindSecret(bytes, kCanaries).has_value());   // ...the keys are not (nor 12 characters of one)
}

TEST_CASE("calls keep succeeding while redis restarts and the shared view comes back", "[e2e][state][redis]") {
  Rig rig("redis");
  auto a = rig.Start();
  auto b = rig.Start();
  CHECK(Outcomes(a->Complete()) == std::vector<std::string>{"ok"});
  rig.TakeKeysSeen();

  rig.state.redis().Stop();
  rig.mock.Script(kCanary1, {"429:retry-after=600"});
  CHECK(Outcomes(a->Complete()) == std::vector<std::string>{"rate_limited", "ok"});  // from memory
  CHECK(Outcomes(a->Complete()) == std::vector<std::string>{"ok"});                  // a remembers
  CHECK(Outcomes(b->Complete()) == std::vector<std::string>{"ok"});  // b still works (its own view)
  rig.TakeKeysSeen();

  REQUIRE(rig.state.redis().Start());  // an empty redis: it kept nothing
  // a writes back what it learned while the store was away; b reads it from there.
  for (int i = 0; i < 50 && State(*b, "openai#1") != "cooling_down"; ++i) {
    a->Complete();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO("b's stderr:\n" << b->process().Stderr());
  CHECK(State(*b, "openai#1") == "cooling_down");
  rig.TakeKeysSeen();
  CHECK(Outcomes(b->Complete()) == std::vector<std::string>{"ok"});
  CHECK(rig.TakeKeysSeen() == std::vector<std::string>{k2});

  const std::string err = a->process().Stderr();
  INFO("a's stderr:\n" << err);
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = err.find(needle); at != std::string::npos; at = err.find(needle, at + 1)) ++n;
    return n;
  };
  CHECK(count("is not usable") == 1);  // one warning for the outage
  CHECK(count("is back: key state is shared again") == 1);
}

}  // namespace
}  // namespace kpm::testing
