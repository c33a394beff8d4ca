#pragma once
/// Shared bits of the adapter tests: the names they use, keys, configs, a fixture with
/// a FakeHttpClient. A test file opens with `using namespace testing;` inside its
/// anonymous namespace in kpm::providers.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "keypool/outcome.h"
#include "providers/provider.h"
#include "tests/unit/providers/fake_http_client.h"

namespace kpm::providers::testing {

using keypool::Outcome;
using keypool::OutcomeName;
using nlohmann::json;

inline keypool::KeyLease Key(std::string secret) {
  keypool::KeyLease k;
  k.provider = "p";
  k.secret = std::move(secret);
  k.label = "p#1";
  return k;
}

inline ProviderConfig Config(ProviderType type, std::string base) {
  ProviderConfig c;
  c.name = std::string(ProviderTypeName(type));
  c.type = type;
  c.base_url = std::move(base);
  c.model = "default-model";
  return c;
}

inline CompletionRequest Hello() {
  CompletionRequest r;
  r.system = "Be brief.";
  r.messages = {{"user", "hi"}, {"assistant", "hello"}, {"user", "again"}};
  r.max_tokens = 64;
  r.temperature = 0.2;
  return r;
}

inline FakeAnswer Stream(std::vector<std::string> chunks, Headers headers = {}) {
  FakeAnswer a;
  a.status = 200;
  a.headers = std::move(headers);
  a.chunks = std::move(chunks);
  return a;
}

struct Fixture {
  FakeHttpClient http;
  FakeClock clock;
  std::unique_ptr<Provider> Make(const ProviderConfig& c) { return MakeProvider(c, http, clock); }
  AttemptContext Ctx(std::vector<size_t>* progress = nullptr) {
    AttemptContext ctx;
    ctx.deadline_ms = clock.now_ms + 120000;
    if (progress != nullptr) ctx.on_text = [progress](size_t n) { progress->push_back(n); };
    return ctx;
  }
};

}  // namespace kpm::providers::testing
