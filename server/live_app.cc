#include "server/live_app.h"

#include <spdlog/spdlog.h>

#include "mcp/tool_registry.h"
#include "state/open_store.h"
#include "server/client_hints.h"
#include "server/logging.h"
#include "server/tools.h"

namespace kpm::server {

LiveApp::LiveApp(std::shared_ptr<providers::HttpClient> http, std::shared_ptr<keypool::Clock> clock,
                 std::shared_ptr<keypool::KeyStateStore> store)
    : http_(std::move(http)),
      clock_(std::move(clock)),
      store_(std::move(store)),
      scrubber_(std::make_shared<Scrubber>()) {}

LiveApp::~LiveApp() = default;

Status LiveApp::Install(Config config) {
  std::lock_guard<std::mutex> build(build_mu_);
  return InstallLocked(std::move(config));
}

Status LiveApp::Load(const std::string& path, const EnvLookup& env) {
  Result<Config> config = LoadConfigFile(path, env);
  if (!config) return config.error();
  return Install(std::move(config.value()));
}

namespace {
bool SameStore(const state::StoreSpec& a, const state::StoreSpec& b) {
  return a.type == b.type && a.path == b.path && a.url == b.url && a.prefix == b.prefix;
}
}  // namespace

Status LiveApp::InstallLocked(Config config) {
  if (!store_) {
    auto opened = state::OpenStore(config.state);
    if (!opened) return opened.error();
    store_ = std::move(opened.value());
    store_spec_ = config.state;
  } else if (store_spec_ && !SameStore(*store_spec_, config.state)) {
    config.warnings.push_back("state: changed; key state stays where it was until keypool-mcp restarts");
  }
  std::string client;
  {
    std::lock_guard<std::mutex> lock(mu_);
    client = client_;
  }
  // The scrubber only grows: every key this process was ever given stays a secret. The
  // App uses it too, so one index of the keys is built, not two.
  auto grown = std::make_shared<Scrubber>(*scrubber());
  for (const auto& pc : config.providers) {
    for (const auto& key : pc.keys) {
      if (!key.secret.empty()) grown->Add(key.secret);
    }
  }
  Config hinted = config;
  ApplyClientHints(hinted, client);
  auto app = App::Create(std::move(hinted), http_, clock_, store_, grown);
  if (!app) return app.error();
  std::shared_ptr<App> fresh = std::move(app.value());
  std::lock_guard<std::mutex> lock(mu_);
  if (app_) retired_.push_back(std::move(app_));
  app_ = std::move(fresh);
  config_ = std::move(config);
  startup_error_.clear();
  scrubber_ = std::move(grown);
  SetLogScrubber(scrubber_);
  return Ok{};
}

void LiveApp::SetStartupError(std::string message) {
  std::lock_guard<std::mutex> lock(mu_);
  startup_error_ = std::move(message);
}

std::shared_ptr<App> LiveApp::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return app_;
}

std::string LiveApp::Instructions() const {
  std::shared_ptr<App> app = Get();
  if (app) return app->Instructions();
  std::lock_guard<std::mutex> lock(mu_);
  return "keypool-mcp is running but its config did not load, so no model call can be made. Show the user this "
         "message: " +
         startup_error_ +
         ". Once the file is fixed and saved, keypool-mcp loads it by itself (no restart needed); `key_status` "
         "then answers.";
}

mcp::ToolResult LiveApp::Unavailable() const {
  mcp::ToolResult r;
  r.is_error = true;
  std::lock_guard<std::mutex> lock(mu_);
  r.text = "keypool-mcp has no usable config: " + startup_error_ +
           ". Fix the file and save it: the server loads it by itself, no restart needed.";
  return r;
}

void LiveApp::SetClient(const std::string& name) {
  std::lock_guard<std::mutex> build(build_mu_);
  std::optional<Config> config;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (client_ == name) return;
    client_ = name;
    config = config_;
  }
  if (!config) return;
  Config probe = *config;
  if (!ApplyClientHints(probe, name)) return;
  if (Status s = InstallLocked(std::move(*config)); !s) {
    spdlog::warn("could not add the {} hints to the key reasons: {}", name, s.error().message);
  }
}

std::shared_ptr<const Scrubber> LiveApp::scrubber() const {
  std::lock_guard<std::mutex> lock(mu_);
  return scrubber_;
}

void LiveApp::CollectRetired() {
  std::vector<std::shared_ptr<App>> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = retired_.begin(); it != retired_.end();) {
      // Unused, and its start-up health check (if any) done: results it is still
      // writing go to the shared store, which the current App reads.
      if (it->use_count() == 1 && !(*it)->startup_check_running()) {
        done.push_back(std::move(*it));
        it = retired_.erase(it);
      } else {
        ++it;
      }
    }
  }
  done.clear();  // the destructors run here, outside the lock
}

Status LiveApp::RegisterTools(mcp::ToolRegistry& registry) {
  for (Tool t : {MakeCompleteTool(*this), MakeKeyStatusTool(*this), MakeCheckKeysTool(*this),
                 MakeListModelsTool(*this)}) {
    Status s = registry.Add(std::move(t));
    if (!s) return s;
  }
  return Ok{};
}

}  // namespace kpm::server
