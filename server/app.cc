#include "server/app.h"

#include <algorithm>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/fiber.h"
#include "keypool/key_pool.h"
#include "providers/base_url.h"

namespace kpm::server {
namespace {
constexpr size_t kMaxConcurrentChecks = 16;
}  // namespace

Result<std::unique_ptr<App>> App::Create(Config config, std::shared_ptr<providers::HttpClient> http,
                                         std::shared_ptr<keypool::Clock> clock,
                                         std::shared_ptr<keypool::KeyStateStore> store,
                                         std::shared_ptr<const Scrubber> scrubber) {
  std::unique_ptr<App> app(new App());
  app->http_ = std::move(http);
  app->clock_ = std::move(clock);
  app->store_ = store ? std::move(store) : std::make_shared<keypool::InMemoryKeyStateStore>();
  if (scrubber) {
    app->scrubber_ = std::move(scrubber);
  } else {
    auto own = std::make_shared<Scrubber>();
    for (const auto& pc : config.providers) {
      for (const auto& key : pc.keys) {
        if (!key.secret.empty()) own->Add(key.secret);
      }
    }
    app->scrubber_ = std::move(own);
  }
  for (const auto& pc : config.providers) {
    auto entry = std::make_unique<ProviderEntry>();
    entry->config = pc;
    std::vector<keypool::KeySpec> keys = pc.keys;
    if (keys.empty()) {  // a server without authentication: one keyless entry
      keypool::KeySpec keyless;
      keyless.label = pc.name;
      keyless.host = providers::UrlHost(pc.base_url);
      keyless.limits = pc.limits;
      keys.push_back(std::move(keyless));
    }
    entry->pool = std::make_unique<keypool::KeyPool>(pc.name, std::move(keys), pc.failover, *app->clock_, app->store_);
    entry->adapter = providers::MakeProvider(entry->config, *app->http_, *app->clock_);
    if (!entry->adapter) {
      return MakeError(ErrorKind::kConfig, "provider " + pc.name + ": no adapter for its type");
    }
    app->entries_.push_back(std::move(entry));
  }
  if (app->entries_.empty()) return MakeError(ErrorKind::kConfig, "no providers configured");
  app->config_ = std::move(config);
  return app;
}

App::~App() {
  shutdown_.Cancel();
  if (startup_check_.joinable()) startup_check_.join();
}

ProviderEntry* App::Find(std::string_view name) {
  for (auto& e : entries_) {
    if (e->config.name == name) return e.get();
  }
  return nullptr;
}

std::vector<ProviderEntry*> App::All() {
  std::vector<ProviderEntry*> out;
  for (auto& e : entries_) out.push_back(e.get());
  return out;
}

ProviderEntry* App::Default() {
  if (ProviderEntry* e = Find(config_.default_provider)) return e;
  return entries_.front().get();
}

std::vector<ProviderEntry*> App::Chain(ProviderEntry* first) {
  std::vector<ProviderEntry*> chain{first};
  const std::vector<std::string>& names = first->config.fallback ? *first->config.fallback : config_.fallback;
  for (const auto& n : names) {
    ProviderEntry* e = Find(n);
    if (e && std::find(chain.begin(), chain.end(), e) == chain.end()) chain.push_back(e);
  }
  return chain;
}

std::vector<KeyCheck> App::CheckKeys(const std::string& only, const CancelToken* cancel) {
  struct Job {
    ProviderEntry* entry;
    size_t index;
    bool runs = false;  // false: nothing to check (a key disabled by configuration)
    keypool::AttemptOutcome outcome;
    providers::HealthInfo info;
    int64_t started_ms = 0;
  };
  std::vector<Job> jobs;
  for (auto& e : entries_) {
    if (!only.empty() && e->config.name != only) continue;
    for (size_t i = 0; i < e->pool->size(); ++i) {
      // A key disabled by configuration (unset variable) has an empty secret.
      const bool runs = !e->pool->LeaseForCheck(i).secret.empty() || e->config.keys.empty();
      jobs.push_back({e.get(), i, runs, {}, {}, 0});
    }
  }
  // At most kMaxConcurrentChecks checks at once, however many keys there are: on fibers
  // of the I/O loop when called from one (check_keys), else on as many threads (--check).
  // Each check's time bound starts when it is taken from the list.
  fiber::ForEach(jobs.size(), kMaxConcurrentChecks, [&](size_t j) {
    Job& job = jobs[j];
    if (!job.runs) return;
    keypool::KeyLease lease = job.entry->pool->LeaseForCheck(job.index);
    job.started_ms = lease.leased_at_ms;
    providers::AttemptContext ctx;
    ctx.deadline_ms = clock_->NowMs() + std::min<int64_t>(job.entry->config.first_byte_timeout_ms, 15000) + 5000;
    ctx.cancel = cancel;
    job.outcome = job.entry->adapter->CheckKey(lease, ctx, &job.info);
  });

  std::vector<KeyCheck> checks;
  for (Job& job : jobs) {
    KeyCheck check;
    check.provider = job.entry->config.name;
    if (job.runs) {
      check.checked = true;
      keypool::AttemptOutcome& outcome = job.outcome;
      outcome.message = scrubber_->Scrub(outcome.message);
      job.entry->pool->ApplyHealthCheck(job.index, outcome, job.info.credit_known_positive, job.started_ms);
      check.outcome = outcome.outcome;
      check.detail = outcome.outcome == keypool::Outcome::kOk ? "ok" : outcome.message;
      if (job.info.credit_remaining && outcome.outcome == keypool::Outcome::kOk) {
        check.detail = "ok, credit left " + std::to_string(*job.info.credit_remaining);
      }
      if (check.detail.empty()) check.detail = std::string(keypool::OutcomeName(check.outcome));
    }
    check.key = job.entry->pool->SnapshotKey(job.index);
    if (!check.checked) check.detail = "not checked: " + check.key.reason;
    checks.push_back(std::move(check));
  }
  return checks;
}

std::string App::Instructions() {
  std::string providers;
  for (ProviderEntry* e : All()) {
    if (!providers.empty()) providers.append(", ");
    const std::string model = e->config.model.empty() ? providers::DefaultModel(e->config.type) : e->config.model;
    providers.append(e->config.name).append(" (").append(std::to_string(e->pool->size()));
    providers.append(e->pool->size() == 1 ? " key" : " keys");
    if (!model.empty()) providers.append(", model ").append(model);
    providers.append(")");
  }
  std::string out("keypool-mcp sends model calls through a pool of API keys and fails over between keys and "
                  "providers by itself. Providers: ");
  out.append(providers).append("; the default is ").append(Default()->config.name);
  out.append(
      ". Use `complete` to ask a model (name a provider or model only when the user asks for one); "
      "`key_status` to answer which key is active or why a call failed (it costs nothing); "
      "`check_keys` to test every key against its provider when the user says a key was fixed or replaced; "
      "`list_models` to see what a provider offers. When `complete` says no key is left, show the user its "
      "message: it lists every key with the reason and when it is back.");
  return out;
}

void App::StartStartupHealthChecks() {
  bool any = std::any_of(entries_.begin(), entries_.end(), [](const auto& e) { return e->config.health_check; });
  if (!any) return;
  startup_check_running_.store(true);
  startup_check_ = std::thread([this] {
    for (auto& e : entries_) {
      if (!e->config.health_check || shutdown_.cancelled()) continue;
      for (const KeyCheck& c : CheckKeys(e->config.name, &shutdown_)) {
        spdlog::info("health check: {}: {} {} {} ({})", c.provider, c.key.label, c.key.fingerprint,
                     keypool::KeyStateName(c.key.state), c.detail);
      }
    }
    startup_check_running_.store(false);
  });
}

}  // namespace kpm::server
