#pragma once
/// Shared fixture of the end-to-end tests (tests/e2e/*): the built keypool-mcp binary
/// driven over stdio (stdio_driver.h) against the `mock-upstream` program
/// (docs/mock-upstream.md), scripted through its HTTP control API.
///
/// - MockProcess: mock-upstream on an ephemeral port; Script/SetDefault/Requests/KeysSeen.
/// - E2eServer: keypool-mcp with a config written to a temp dir, an McpSession on its
///   stdio, tool-call helpers that remember every result, and the transcript checks of
///   STYLE §5 (every line JSON-RPC, no canary on stdout/stderr/results, exit 0 on EOF).
/// - ProviderSpec/ConfigYaml: a YAML config for providers pointing at the mock.
///
/// Uses Catch2 assertions: include it from test files only.

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/stdio_driver.h"

namespace httplib {
class Client;
}

namespace kpm::testing {

using std::chrono::milliseconds;

/// Every read from a child gives up after this long (clangd's test client: 10 s).
inline constexpr milliseconds kReadTimeout{10000};
/// How long a child may take to exit once told to.
inline constexpr milliseconds kExitTimeout{5000};

/// Canary keys (SPEC §4), told apart by their last four characters. If any of them, or
/// their middle 12 characters, ever shows up on stdout, stderr or in a result, a key leaked.
inline const std::string kCanary1 = "sk-canary-Ka7Qz2XwLp9Rt4VbNcAA1111";
inline const std::string kCanary2 = "sk-canary-Mb3Wy8UvJq5Ps1TdHeBB2222";
inline const std::string kCanary3 = "sk-canary-Pc5Xz1RsTk8Lm2QwJfCC3333";
inline const std::vector<std::string> kCanaries = {kCanary1, kCanary2, kCanary3};

/// "…" (U+2026), the ellipsis inside a fingerprint.
inline constexpr const char* kEllipsis = "\xE2\x80\xA6";

/// `path` when that file exists, else fails the test naming `what`.
std::string RequireBuilt(const std::string& path, const std::string& what);

#ifdef KPM_BINARY_PATH
/// The keypool-mcp binary built by CMake (compile definition of kpm_tests).
inline std::string KeypoolBinary() { return RequireBuilt(KPM_BINARY_PATH, "keypool-mcp"); }
#endif
#ifdef KPM_MOCK_PATH
/// The mock-upstream program built by CMake (compile definition of kpm_tests).
inline std::string MockBinary() {
  return RequireBuilt(KPM_MOCK_PATH, "mock-upstream (tests/support/mock_upstream_main.cc)");
}
#endif

/// The last four characters of a key or fingerprint (how tests name canary keys).
std::string Last4(std::string_view key);

/// mock-upstream started with --exit-on-stdin-eof on an ephemeral port; the destructor
/// ends it. Steps are the language of docs/mock-upstream.md §3.
class MockProcess {
 public:
  /// `threads`: requests the mock serves at once (--threads; each slow one holds one).
  explicit MockProcess(const std::string& mock_binary, int threads = 32);
  ~MockProcess();
  MockProcess(const MockProcess&) = delete;
  MockProcess& operator=(const MockProcess&) = delete;

  int port() const { return port_; }
  /// "http://127.0.0.1:PORT" + prefix.
  std::string BaseUrl(std::string_view prefix = "/v1") const;
  /// The base URL a provider of `type` uses on this mock: /api/v1 for openrouter (the
  /// mock tells OpenRouter by that prefix), /v1beta for gemini, else /v1.
  std::string BaseUrlFor(std::string_view type) const;

  /// Replaces `key`'s queue of steps (POST /_mock/script); requires the mock to accept it.
  void Script(const std::string& key, const std::vector<std::string>& steps);
  /// Script with steps given as JSON (strings or step objects: docs/mock-upstream.md §3).
  void ScriptJson(const std::string& key, const Json& steps);
  /// The step `key` gets once its queue is empty (POST /_mock/default).
  void SetDefault(const std::string& key, const std::string& step);
  /// Forgets scripts, defaults and requests; lets hanging requests go.
  void Reset();
  /// Every request the mock recorded so far (GET /_mock/requests), in arrival order.
  Json Requests();
  /// Last4 of the key of every POST (completion) request, in order.
  std::vector<std::string> KeysSeen();
  /// Last4 of the key of every request whose path ends with `path_suffix` (any method).
  std::vector<std::string> KeysSeenOn(std::string_view path_suffix);
  /// Polls Requests() until at least `count` requests are recorded or `timeout` passes.
  bool WaitForRequests(size_t count, milliseconds timeout);

  /// What mock-upstream wrote to stderr (one line per request).
  std::string Stderr() const;

 private:
  httplib::Client& Control();

  std::unique_ptr<StdioProcess> process_;
  int port_ = 0;
  std::unique_ptr<httplib::Client> control_;
};

/// One provider of a generated config.
struct ProviderSpec {
  std::string name;
  std::string type = "openai";
  std::string base_url;
  std::string model;              ///< omitted when empty
  std::vector<std::string> keys;  ///< each a literal key or "$VAR" (quoted), or a "{ key: … }" object
  std::string extra;              ///< more YAML lines at provider level (4-space indent)
};

/// A YAML config with a `providers:` map of `providers`, then `top_extra` (YAML lines
/// at the top level, e.g. "fallback: [backup]\n").
std::string ConfigYaml(const std::vector<ProviderSpec>& providers, const std::string& top_extra = "");

/// Provider-level YAML that keeps failover tests fast: an 8 s call deadline and a 1 ms
/// backoff between server errors.
inline const std::string kFastFailover =
    "    deadlineMs: 8000\n"
    "    failover:\n"
    "      backoffMs: 1\n";

/// A provider `name` of `type` served by `mock` (BaseUrlFor(type)), with `keys`, default
/// `model` and provider-level YAML `extra` (kFastFailover unless told otherwise).
ProviderSpec MockProvider(const MockProcess& mock, std::string name, std::string type, std::string model,
                          std::vector<std::string> keys, std::string extra = kFastFailover);

/// What to start keypool-mcp with.
struct ServerLaunch {
  std::string config_name = "config.yaml";
  std::vector<std::string> extra_args = {"--log-level", "debug"};
  std::map<std::string, std::string> env;
  std::vector<std::string> unset_env;
  std::vector<std::string> secrets = kCanaries;  ///< keys that must never be seen
};

/// keypool-mcp started on `config_text` (written to a temp dir that is also its HOME),
/// with an MCP session on its stdio. The destructor kills a child still running.
class E2eServer {
 public:
  E2eServer(const std::string& binary, const std::string& config_text, ServerLaunch launch = {});
  ~E2eServer();
  E2eServer(const E2eServer&) = delete;
  E2eServer& operator=(const E2eServer&) = delete;

  StdioProcess& process() { return *process_; }
  McpSession& session() { return *session_; }
  const std::string& config_path() const { return config_path_; }

  /// initialize (2025-06-18) + notifications/initialized; requires a result.
  void Initialize();
  /// tools/call `name`; requires a reply with a result and returns that result. Every
  /// result is remembered for the canary check of CheckTranscript().
  Json CallTool(std::string_view name, const Json& arguments = Json::object());
  /// CallTool("complete", arguments).
  Json Complete(const Json& arguments = {{"prompt", "hi"}});
  /// key_status (of `provider`, or all): every key of every provider, by label.
  std::map<std::string, Json> KeyStatus(const std::string& provider = "");
  /// Remembers `text` for the canary check (for replies read by hand).
  void Remember(const std::string& text) { results_ += text; }

  /// Closes stdin and requires stdout EOF and exit code 0, then CheckTranscript().
  void CloseAndExpectCleanExit();
  /// Every stdout line is one JSON-RPC 2.0 message ending in '\n' without '\r', and no
  /// secret is on stdout, on stderr or in any remembered result.
  void CheckTranscript();

 private:
  TempDir dir_;
  std::string config_path_;
  std::vector<std::string> secrets_;
  std::unique_ptr<StdioProcess> process_;
  std::unique_ptr<McpSession> session_;
  std::string results_;
};

/// mock-upstream plus a keypool-mcp configured against it (started once the mock is
/// scripted, since start-up health checks already reach it). Destroys the server first.
class E2eRig {
 public:
  E2eRig(std::string server_binary, const std::string& mock_binary)
      : mock(mock_binary), binary_(std::move(server_binary)) {}

  /// Starts keypool-mcp on ConfigYaml(providers, top_extra), then initializes it unless
  /// `initialize` is false. Call once.
  E2eServer& Start(const std::vector<ProviderSpec>& providers, const std::string& top_extra = "",
                   ServerLaunch launch = {}, bool initialize = true);
  E2eServer& server();

  MockProcess mock;

 private:
  std::string binary_;
  std::unique_ptr<E2eServer> server_;
};

/// The text of a tool result's first content block (which must be text).
std::string ResultText(const Json& result);
/// structuredContent.attempts[].outcome of a complete/list_models result.
std::vector<std::string> Outcomes(const Json& result);
/// Every key of every provider in a key_status/check_keys structuredContent, by label.
std::map<std::string, Json> KeysByLabel(const Json& structured_content);

/// Runs `binary` with `args` (hermetic, ServerOptions) and stdin closed, to its exit;
/// stdout and stderr are complete when it returns. Requires an exit within kExitTimeout.
std::unique_ptr<StdioProcess> RunToExit(const std::string& binary, const std::vector<std::string>& args,
                                        const TempDir& home,
                                        const std::map<std::string, std::string>& env = {},
                                        const std::vector<std::string>& unset_env = {});

}  // namespace kpm::testing
