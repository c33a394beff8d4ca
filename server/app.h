#pragma once
/// App: the loaded configuration brought to life — one KeyPool and one Provider
/// adapter per configured provider, the fallback chains, the key scrubber, and the
/// start-up health check. The tools (server/tool_*.cc) are thin views over it.

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/cancel.h"
#include "common/redact.h"
#include "common/result.h"
#include "keypool/clock.h"
#include "keypool/key_pool.h"
#include "providers/http_client.h"
#include "providers/provider.h"
#include "server/config.h"

namespace kpm::server {

/// One configured provider: its settings, keys and adapter.
struct ProviderEntry {
  providers::ProviderConfig config;
  std::unique_ptr<keypool::KeyPool> pool;
  std::unique_ptr<providers::Provider> adapter;
};

/// One key's health-check result, for --check and check_keys.
struct KeyCheck {
  std::string provider;
  keypool::KeySnapshot key;  ///< state after the check
  bool checked = false;      ///< false: the key could not be checked (e.g. unset variable)
  keypool::Outcome outcome = keypool::Outcome::kOk;
  std::string detail;        ///< scrubbed
};

class App {
 public:
  /// `http`, `clock` and `store` may be shared with the App a reload replaces (one
  /// HTTP client per I/O loop; key state outlives any one config). `store` keeps every
  /// key's state (one for all providers; nullptr: this App's memory only).
  /// Fails on an inconsistent config.
  /// `scrubber` must know every key of `config` (LiveApp's, which also knows the keys of
  /// the configs before); nullptr: the App builds one of its own keys.
  static Result<std::unique_ptr<App>> Create(Config config, std::shared_ptr<providers::HttpClient> http,
                                             std::shared_ptr<keypool::Clock> clock,
                                             std::shared_ptr<keypool::KeyStateStore> store = nullptr,
                                             std::shared_ptr<const Scrubber> scrubber = nullptr);
  ~App();

  const Config& config() const { return config_; }
  const Scrubber& scrubber() const { return *scrubber_; }
  keypool::Clock& clock() { return *clock_; }
  keypool::KeyStateStore& store() { return *store_; }

  /// nullptr when no provider has that name.
  ProviderEntry* Find(std::string_view name);
  std::vector<ProviderEntry*> All();
  /// The provider used when a call names none.
  ProviderEntry* Default();
  /// `name` first, then its fallback providers in order (each once, never itself).
  std::vector<ProviderEntry*> Chain(ProviderEntry* first);

  /// Runs the health check on every key of `only` (or of every provider when empty),
  /// concurrently across keys, each bounded by the provider's first-byte timeout.
  std::vector<KeyCheck> CheckKeys(const std::string& only, const CancelToken* cancel);
  /// Starts the check for providers with healthCheck: true on a background thread.
  void StartStartupHealthChecks();
  /// True while that check runs (an App a reload replaced is kept until it ends).
  bool startup_check_running() const { return startup_check_running_.load(); }

  /// initialize's `instructions`: when an agent should use which tool, and what this
  /// config has (providers, key counts, default models).
  std::string Instructions();

 private:
  App() = default;
  Config config_;
  std::shared_ptr<providers::HttpClient> http_;
  std::shared_ptr<keypool::Clock> clock_;
  std::shared_ptr<keypool::KeyStateStore> store_;
  std::shared_ptr<const Scrubber> scrubber_;
  std::vector<std::unique_ptr<ProviderEntry>> entries_;
  std::thread startup_check_;
  std::atomic<bool> startup_check_running_{false};
  CancelToken shutdown_;
};

}  // namespace kpm::server
