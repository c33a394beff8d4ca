// keypool-mcp: wiring only. Flags (CLI11), logging, config, the App, then either
// --check or the MCP server on stdin/stdout.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <exception>
#include <iostream>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "mcp/mcp_server.h"
#include "mcp/stdio_transport.h"
#include "mcp/tool_registry.h"
#include "server/app.h"
#include "server/check_report.h"
#include "server/config_schema.h"
#include "server/init.h"
#include "server/config_watcher.h"
#include "server/live_app.h"
#include "server/register.h"
#include "server/config.h"
#include "server/logging.h"
#include "server/tools.h"
#include "server/signals.h"
#include "server/status.h"
#include "state/open_store.h"
#include "state/shared_store.h"

#ifndef KPM_VERSION
#define KPM_VERSION "0.0.0"
#endif

namespace {

using namespace kpm;
using namespace kpm::server;

int Fail(const std::string& message, int code = 2) {
  std::fprintf(stderr, "keypool-mcp: %s\n", message.c_str());
  return code;
}

/// --check: validate every key now, print the verdict and the table (or JSON) on
/// stdout, exit 0 when every provider has at least one usable key (check_report.h).
int RunCheck(App& app, bool json) {
  std::vector<std::string> names;
  for (ProviderEntry* e : app.All()) names.push_back(e->config.name);
  CheckReport report = BuildCheckReport(names, app.CheckKeys("", nullptr));
  std::string out = json ? RenderCheckJson(report) : RenderCheckText(report);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return report.ok ? 0 : 1;
}

/// --check on a config that does not load: the message on stderr (and, with --json, as
/// a JSON document on stdout for a script), exit 2.
int FailCheck(const std::string& message, bool json) {
  if (json) {
    const std::string doc = nlohmann::json{{"ok", false}, {"error", {{"kind", "config"}, {"message", message}}}}
                                .dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    std::printf("%s\n", doc.c_str());
    std::fflush(stdout);
  }
  return Fail(message);
}

/// After the config file changed (or SIGHUP): load it again; what loaded serves the
/// next calls. The outcome goes to stderr and, as notifications/message, to the client.
void ReloadConfig(LiveApp& live, mcp::McpServer& server, const std::string& path, const EnvLookup& env) {
  const bool had_app = live.Get() != nullptr;
  Status s = live.Load(path, env);
  if (!s) {
    const std::string text = "config " + path + " changed but does not load (" + s.error().message + "); " +
                             (had_app ? "the previous config keeps serving" : "still serving without a config");
    spdlog::warn("{}", text);
    server.Log("warning", {{"event", "config_reload_failed"}, {"message", live.scrubber()->Scrub(text)}});
    return;
  }
  std::shared_ptr<App> app = live.Get();
  size_t key_count = 0;
  for (ProviderEntry* e : app->All()) key_count += e->pool->size();
  const std::string text = "config " + path + " reloaded: " + std::to_string(app->All().size()) +
                           " provider(s), " + std::to_string(key_count) + " key(s)";
  spdlog::info("{}", text);
  for (const auto& w : app->config().warnings) spdlog::warn("{}", w);
  server.SetInstructions(live.Instructions());
  server.Log("info", {{"event", "config_reloaded"}, {"message", text}});
}

struct StatusFlags {
  bool json = false;
  bool watch = false;
  std::string reset;
  bool prune = false;
};

volatile std::sig_atomic_t g_stop_watch = 0;
extern "C" void StopWatch(int) { g_stop_watch = 1; }

/// `keypool-mcp status`: the store's view of every key, printed on stdout.
int RunStatus(const Config& config, const StatusFlags& flags) {
  if (config.state.type == state::StoreType::kNone) {
    return Fail("state: none keeps key state in each server process only; there is no shared state to show "
                "(use state: sqlite, the default, or redis)");
  }
  auto opened = state::OpenStore(config.state);
  if (!opened) return Fail(opened.error().message);
  auto* store = dynamic_cast<state::SharedKeyStateStore*>(opened->get());
  if (store == nullptr) return Fail("internal error: the store is not a shared one", 1);
  const std::string where = store->Describe();
  if (!flags.reset.empty() || flags.prune) {
    auto rows = ReadStatus(config, *store);
    if (!rows) return Fail(where + ": " + rows.error().message);
    if (!flags.reset.empty()) {
      auto ids = ResolveKey(*rows, flags.reset);
      if (!ids) return Fail(ids.error().message);
      for (const std::string& id : *ids) {
        if (Status s = store->Reset(id); !s) return Fail(where + ": " + s.error().message);
      }
      std::printf("reset %s: ready for every process\n", flags.reset.c_str());
    }
    if (flags.prune) {
      auto keep = ConfiguredIds(config, *store);
      if (!keep) return Fail(where + ": " + keep.error().message);
      auto gone = store->Prune(*keep);
      if (!gone) return Fail(where + ": " + gone.error().message);
      std::printf("pruned %zu key(s) not in this config\n", *gone);
    }
    std::fflush(stdout);
    return 0;
  }
  if (flags.watch) {
    std::signal(SIGINT, StopWatch);
    std::signal(SIGTERM, StopWatch);
  }
  do {
    auto rows = ReadStatus(config, *store);
    if (!rows) return Fail(where + ": " + rows.error().message);
    std::string text = flags.json ? StatusToJson(*rows, where).dump(2) + "\n" : RenderStatusTable(*rows, where);
    if (flags.watch && !flags.json) text = "\x1b[H\x1b[2J" + text;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    for (int i = 0; flags.watch && i < 10 && !g_stop_watch; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  } while (flags.watch && !g_stop_watch);
  return 0;
}

/// Everything main does once the stderr logger is in place.
int Main(int argc, char** argv) {
  IgnoreSigpipe();

  CLI::App cli{"keypool-mcp: an MCP server that routes model calls through pools of API keys with failover"};
  std::optional<std::string> config_flag;
  std::string level_flag;
  bool check = false;
  bool check_json = false;
  bool print_schema = false;
  bool version = false;
  cli.add_option("--config", config_flag, "Config file, JSON or YAML (default: $KEYPOOL_CONFIG, then "
                                          "$XDG_CONFIG_HOME or ~/.config/keypool-mcp/config.{yaml,yml,json})");
  cli.add_option("--log-level", level_flag, "trace, debug, info (default), warn, error, off; logs go to stderr");
  cli.add_flag("--check", check, "Validate the config, health-check every key, print one verdict line per provider "
                                 "and a table, exit 0 if every provider has a usable key, 1 if not, 2 on a config "
                                 "error");
  cli.add_flag("--json", check_json, "With --check: print the verdict as JSON")->needs("--check");
  cli.add_flag("--print-config-schema", print_schema, "Print the config file's JSON Schema and exit");
  cli.add_flag("--version", version, "Print the version and exit");
  bool init_force = false;
  CLI::App* init_cmd = cli.add_subcommand("init", "Write a starter config (to --config's path, else where the "
                                                  "server looks first) from the provider key variables set");
  init_cmd->add_flag("--force", init_force, "Overwrite an existing config file");
  init_cmd->fallthrough();
  StatusFlags status_flags;
  CLI::App* status_cmd = cli.add_subcommand("status", "Print every key's shared state (cooldowns, disabled keys, "
                                                      "counters, limit use) as every server process sees it");
  status_cmd->add_flag("--json", status_flags.json, "Print JSON instead of the table");
  status_cmd->add_flag("--watch", status_flags.watch, "Print again every second until interrupted");
  status_cmd->add_option("--reset", status_flags.reset,
                         "Clear the cooldown or disabled state of the key with this label, fingerprint or id, "
                         "for every process");
  status_cmd->add_flag("--prune", status_flags.prune, "Remove the stored keys this config no longer names");
  status_cmd->fallthrough();
  std::string register_client;
  CLI::App* register_cmd = cli.add_subcommand(
      "register", "Print the command or config snippet that registers this server with an MCP client "
                  "(docs/clients.md); where it goes is said on stderr");
  register_cmd->add_option("CLIENT", register_client, "The client")
      ->required()
      ->check(CLI::IsMember(kRegisterClients));
  register_cmd->fallthrough();
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a ParseError too: CLI11 prints it (help to stdout, errors to stderr).
    // Exit codes (docs/configuration.md): 0 ok, 1 check failed, 2 usage or config error;
    // CLI11's own codes (105-114) would say nothing to a script.
    return cli.exit(e) == 0 ? 0 : 2;
  }
  if (version) {
    std::printf("keypool-mcp %s\n", KPM_VERSION);
    return 0;
  }

  if (print_schema) {
    std::printf("%s\n", ConfigSchema().dump(2).c_str());
    return 0;
  }
  EnvLookup env = ProcessEnv();
  if (init_cmd->parsed()) {
    auto done = RunInit(config_flag, init_force, env);
    if (!done) return Fail(done.error().message);
    std::string vars;
    for (const std::string& v : done->variables) vars += (vars.empty() ? "" : ", ") + v;
    std::fprintf(stderr, "keypool-mcp: wrote %s (mode 0600) from %s, and its schema %s\nnext: keypool-mcp --check\n",
                 done->config_path.c_str(), vars.c_str(), done->schema_path.c_str());
    return 0;
  }
  // Level precedence: flag > KEYPOOL_LOG_LEVEL > config logLevel > info.
  std::optional<std::string> level_name;
  if (!level_flag.empty()) level_name = level_flag;
  else if (auto v = env("KEYPOOL_LOG_LEVEL"); v && !v->empty()) level_name = *v;
  if (level_name) {
    auto lvl = ParseLogLevel(*level_name);
    if (!lvl) return Fail("unknown log level \"" + *level_name + "\" (use trace, debug, info, warn, error, off)");
    spdlog::set_level(*lvl);
  }

  // The config. Where it cannot load, --check and status fail (exit 2); the server
  // starts anyway and says why in initialize and in every tool call (docs/clients.md),
  // because a client shows "connection closed" with no reason for a process that exits.
  Result<std::string> path = FindConfigPath(config_flag, env);
  if (status_cmd->parsed() || register_cmd->parsed()) {
    if (!path) return Fail(path.error().message);
    Result<Config> config = LoadConfigFile(*path, env);
    if (!config) return Fail(config.error().message);
    if (status_cmd->parsed()) return RunStatus(*config, status_flags);
    auto reg = RegisterFor(register_client, *path, *config);
    if (!reg) return Fail(reg.error().message);
    for (const auto& note : reg->notes) {
      std::fprintf(stderr, "keypool-mcp register %s: %s\n", register_client.c_str(), note.c_str());
    }
    std::fwrite(reg->text.data(), 1, reg->text.size(), stdout);
    std::fflush(stdout);
    return 0;
  }

  // The one upstream I/O loop (common/fiber.h): the HTTP client drives every transfer on
  // its thread, and every tool call that may reach an upstream runs on one of its fibers.
  // Every App a reload builds shares it, the clock and the key state store.
  fiber::Loop io_loop;
  LiveApp live(providers::MakeCurlHttpClient(io_loop), std::make_shared<keypool::SystemClock>());
  Status loaded = path ? live.Load(*path, env) : Status(path.error());
  if (!loaded) {
    if (check) return FailCheck(loaded.error().message, check_json);
    spdlog::error("{}", loaded.error().message);
    spdlog::error("keypool-mcp: serving without a config: every tool call answers with the error above until "
                  "the file is fixed");
    live.SetStartupError(loaded.error().message);
  }
  if (std::shared_ptr<App> app = live.Get()) {
    if (!level_name && app->config().log_level) {
      if (auto lvl = ParseLogLevel(*app->config().log_level)) spdlog::set_level(*lvl);
    }
    for (const auto& w : app->config().warnings) spdlog::warn("{}", w);
  }
  for (const auto& w : EnvironmentWarnings(env)) spdlog::warn("{}", w);

  if (check) return RunCheck(*live.Get(), check_json);

  if (std::shared_ptr<App> app = live.Get()) {
    size_t key_count = 0;
    for (ProviderEntry* e : app->All()) key_count += e->pool->size();
    spdlog::info("keypool-mcp {} started: {} provider(s), {} key(s), config {}", KPM_VERSION, app->All().size(),
                 key_count, *path);
  }

  mcp::ToolRegistry registry;
  if (Status s = live.RegisterTools(registry); !s) return Fail(s.error().message, 1);

  mcp::StdioTransport transport(0, 1);
  transport.SetOutputFilter([&live](std::string line) { return live.scrubber()->Scrub(line); });
  mcp::McpServerOptions options;
  options.version = KPM_VERSION;
  options.instructions = live.Instructions();
  options.loop = &io_loop;  // tool calls run on fibers of the I/O loop
  if (std::shared_ptr<App> app = live.Get()) options.max_concurrent_calls = app->config().max_concurrent_calls;
  // A client that names itself may get hints for its environment in key reasons.
  options.on_client = [&live](const std::string& name, const std::string&) { live.SetClient(name); };
  mcp::McpServer server(options, registry, transport);

  // Hot reload: the file changed (inotify) or SIGHUP. A config that does not load
  // leaves the running one serving, with one warning here and one to the client.
  std::optional<ConfigWatcher> watcher;
  if (path) {
    watcher.emplace(
        *path, [&] { ReloadConfig(live, server, *path, env); }, [&live] { live.CollectRetired(); });
  }
  ShutdownOnSignals signals(server, [&watcher] {
    if (watcher) watcher->Trigger();
  });
  if (std::shared_ptr<App> app = live.Get()) app->StartStartupHealthChecks();
  int rc = server.Run();
  watcher.reset();
  spdlog::info("keypool-mcp: exiting");
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  // First: spdlog's own default logger writes to stdout, the protocol channel.
  InstallStderrLogger();
  // The second catch-all of STYLE.md §3 (the first is in dispatch): our code does not
  // throw, but a library might (std::bad_alloc, a CLI11 or spdlog corner). Say so on
  // stderr, never on stdout, and exit 1 rather than std::terminate's abort.
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "keypool-mcp: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "keypool-mcp: internal error (unknown exception)\n");
  }
  return 1;
}
