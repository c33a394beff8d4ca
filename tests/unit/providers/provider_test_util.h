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

/// A lease of `secret`, on `base_url` when given. Its strings are move-assigned from
/// std::string values, not assigned from literals: GCC 12 at -O3 reports a false
/// -Wrestrict inside std::string::operator=(const char*) (GCC bug 105329), an error
/// with -Werror in Release builds.
inline keypool::KeyLease Key(std::string secret, std::string base_url = std::string()) {
  keypool::KeyLease k;
  k.provider = std::string("p");
  k.secret = std::move(secret);
  k.label = std::string("p#1");
  k.base_url = std::move(base_url);
  return k;
}

inline ProviderConfig Config(ProviderType type, std::string base) {
  ProviderConfig c;
  c.name = std::string(ProviderTypeName(type));
  c.type = type;
  c.base_url = std::move(base);
  c.model = std::string("default-model");
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
    ctx.deadline_ms = clock.NowMs() + 120000;
    if (progress != nullptr) ctx.on_text = [progress](size_t n) { progress->push_back(n); };
    return ctx;
  }
};

}  // namespace kpm::providers::testing
