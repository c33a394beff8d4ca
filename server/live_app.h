#pragma once
/// LiveApp: the App the tools serve right now, and how it is replaced. A config
/// reload (server/config_watcher.h) or a client that names itself (a hint for its
/// filtered environment) builds a new App and installs it; a call in flight finishes
/// on the App it started with, which is destroyed off the I/O loop once no call holds
/// it. Until a config loads there is no App: every tool call, and initialize's
/// instructions, say why — the same words `--check` prints.

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/redact.h"
#include "common/result.h"
#include "keypool/clock.h"
#include "keypool/key_state_store.h"
#include "mcp/tool.h"
#include "providers/http_client.h"
#include "server/app.h"
#include "server/config.h"
#include "state/store_spec.h"

namespace kpm::mcp {
class ToolRegistry;
}  // namespace kpm::mcp

namespace kpm::server {

class LiveApp {
 public:
  /// What every App of this process shares: the one HTTP client of the I/O loop, the
  /// clock, and the key state store (so a reload forgets no key's state). A null
  /// `store` is opened from the first config that loads (its `state:`).
  LiveApp(std::shared_ptr<providers::HttpClient> http, std::shared_ptr<keypool::Clock> clock,
          std::shared_ptr<keypool::KeyStateStore> store = nullptr);
  ~LiveApp();
  LiveApp(const LiveApp&) = delete;
  LiveApp& operator=(const LiveApp&) = delete;

  /// Loads the config file and installs an App built from it (Install). The start-up
  /// load and every reload (file changed, SIGHUP). Thread-safe.
  Status Load(const std::string& path, const EnvLookup& env);
  /// Builds an App from `config` and installs it in place of the current one. On an
  /// error nothing changes and the error says why. A changed `state:` (or
  /// maxConcurrentCalls, logLevel) needs a restart: the warning says so. Thread-safe.
  Status Install(Config config);
  /// No App could be built at start-up: tool calls answer `message` (isError) until a
  /// config loads. Thread-safe.
  void SetStartupError(std::string message);

  /// The App serving now; nullptr while no config has loaded. Hold the pointer for
  /// the whole call. Thread-safe.
  std::shared_ptr<App> Get() const;
  /// initialize's instructions: the App's, or why there is none.
  std::string Instructions() const;
  /// The tool result of a call made while no config has loaded.
  mcp::ToolResult Unavailable() const;

  /// The client named itself (initialize's clientInfo.name). When it is one known to
  /// keep environment variables from its MCP servers and a key's variable is unset,
  /// the App is rebuilt so that key's reason says how to fix it for this client.
  void SetClient(const std::string& name);

  /// Every key any App of this process has held: the output filter and the log
  /// scrubber. A key a reload removed stays in it — it is still a secret.
  std::shared_ptr<const Scrubber> scrubber() const;

  /// Destroys the replaced Apps no call holds any more. Call from a thread that is
  /// not the I/O loop's (an App's destructor joins its health-check thread).
  void CollectRetired();

  /// Registers complete, key_status, check_keys and list_models: each call runs on
  /// the App current when it starts.
  Status RegisterTools(mcp::ToolRegistry& registry);

 private:
  Status InstallLocked(Config config);

  std::shared_ptr<providers::HttpClient> http_;
  std::shared_ptr<keypool::Clock> clock_;
  std::shared_ptr<keypool::KeyStateStore> store_;  // set once; guarded by build_mu_
  std::optional<state::StoreSpec> store_spec_;      // what store_ was opened from; build_mu_

  std::mutex build_mu_;  // one App built at a time (reload vs. client hint)
  mutable std::mutex mu_;
  std::shared_ptr<App> app_;                    // guarded
  std::optional<Config> config_;                // as loaded, before client hints; guarded
  std::string startup_error_;                   // guarded
  std::string client_;                          // guarded
  std::shared_ptr<const Scrubber> scrubber_;    // guarded; replaced, never changed
  std::vector<std::shared_ptr<App>> retired_;   // guarded
};

}  // namespace kpm::server
