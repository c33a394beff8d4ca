#pragma once
/// `keypool-mcp register CLIENT`: the exact command or config snippet that registers this
/// server with one MCP client (docs/clients.md), with the absolute binary and config
/// paths, the environment pass-through the client needs for every `$VAR` the config's
/// keys name, and a client tool timeout that fits the config's `deadlineMs`.
///
/// Everything here is a pure function of its arguments except SelfBinaryPath and
/// RegisterFor (which read /proc/self/exe and the working directory). main prints:
/// Registration::text on stdout (exactly what to run or paste), Registration::notes on
/// stderr (where it goes and what to check; never pasted).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "server/config.h"

namespace kpm::server {

/// The clients `register` knows, in the order messages list them.
inline const std::vector<std::string> kRegisterClients = {"claude", "gemini", "codex", "opencode",
                                                          "cursor", "vscode", "claude-desktop"};

/// The name the server is registered under in every client.
inline constexpr std::string_view kRegisterServerName = "keypool";

/// Added to the config's largest `deadlineMs` to make a client's tool-call timeout. The
/// deadline already counts from the call's arrival and covers the queue, every attempt,
/// backoff and wait; past it the server itself answers with an error result that names
/// every key and why it failed. The margin covers what lies outside the deadline (the
/// last transfer being cut off, the reply crossing the pipe, the client's own
/// scheduling) so the client gets that answer instead of its own generic timeout.
inline constexpr int64_t kClientTimeoutMarginMs = 10000;

/// How long a client should wait for the server to start (Codex `startup_timeout_sec`):
/// a `keyCommand` (`op read`, `pass show`) runs at load and may ask for a passphrase.
inline constexpr int64_t kClientStartupTimeoutSec = 30;

/// What register needs to know; paths absolute.
struct RegisterInput {
  std::string client;                 ///< one of kRegisterClients
  std::string binary_path;            ///< the keypool-mcp executable
  std::string config_path;            ///< passed as --config
  std::vector<std::string> env_vars;  ///< Config::env_refs: what the client must pass through
  int64_t deadline_ms = 120000;       ///< LargestDeadlineMs of the config
};

struct Registration {
  std::string text;                ///< stdout: the command to run or the file content to paste
  std::vector<std::string> notes;  ///< stderr lines: where `text` goes first, then what to check
};

/// The largest `deadlineMs` of any provider (a call may fall back to another provider,
/// and the client's timeout covers every tool call); the default when there is none.
int64_t LargestDeadlineMs(const Config& config);

/// deadline_ms + kClientTimeoutMarginMs.
int64_t ClientTimeoutMs(int64_t deadline_ms);

/// The snippet for `input.client`. A kInvalidArgument error listing kRegisterClients when
/// the client is not one of them, or when a path is not absolute.
Result<Registration> BuildRegistration(const RegisterInput& input);

/// The running executable's absolute path (the target of /proc/self/exe); kIo on failure.
Result<std::string> SelfBinaryPath();

/// BuildRegistration for the running binary, `config_path` (as FindConfigPath gave it,
/// made absolute against the working directory) and the loaded `config`.
Result<Registration> RegisterFor(const std::string& client, const std::string& config_path, const Config& config);

}  // namespace kpm::server
