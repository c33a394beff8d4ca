#pragma once
/// Keys that do not come from the config text or the client's environment (issue 11):
/// a key file (`keyFile`) and a key command (`keyCommand`, the way `pass show`, `op read`
/// or an `apiKeyHelper` hand out secrets). config.cc maps the field to these and wraps
/// their messages with the file:line:col of the field.
///
/// No message of this file contains key material: never the content of a key file, never
/// a command's stdout, and a command's stderr only as a short hint with every word that
/// could be part of a key left out (ScrubbedHint).

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace kpm::server {

/// How long a key command may run before its process group is killed.
inline constexpr std::chrono::milliseconds kKeyCommandTimeout{10000};

/// The key in the file at `path` (already resolved: see ResolveKeyFilePath): its first
/// line, surrounding whitespace removed. Errors (kConfig), each naming `path`: the file
/// is missing, unreadable, not a regular file, readable or writable by group or others
/// (mode & 077: "chmod 600 PATH"), or its first line is empty. Opening never blocks (a
/// FIFO is refused). The caller checks the key is header-safe.
Result<std::string> ReadKeyFile(const std::string& path);

/// `written` as a path: `~/…` is under `home` (an error when `home` is empty), a relative
/// path is relative to `config_dir` (empty: the working directory), an absolute path
/// stays. No file access.
Result<std::string> ResolveKeyFilePath(std::string_view written, std::string_view config_dir, std::string_view home);

/// Runs `argv` (argv[0] looked up on PATH, no shell) with stdin /dev/null, stdout and
/// stderr captured, in a process group of its own that is killed (SIGKILL) once
/// `timeout` passes. Returns the first line of stdout, surrounding whitespace removed.
/// Errors (kIo) begin with DescribeCommand(argv): "… not found", "… exited with
/// code N", "… was killed by signal N", "… timed out after 10s", "… printed nothing",
/// optionally followed by ": " and ScrubbedHint of its stderr. Stdout is never in a
/// message. `argv` must not be empty. Blocks the calling thread until the command ends
/// (or is killed). The caller checks the key is header-safe.
Result<std::string> RunKeyCommand(const std::vector<std::string>& argv,
                                  std::chrono::milliseconds timeout = kKeyCommandTimeout);

/// "keyCommand [pass show openai/key-1]": each argument as ScrubbedHint words keeps
/// them (a literal key passed as an argument shows as "…"), cut to about 60 characters.
std::string DescribeCommand(const std::vector<std::string>& argv);

/// The first non-empty line of `text`, with every word (a run without spaces) that could
/// be part of a key replaced by "…", and with any of `secrets` (of 12 characters or more)
/// scrubbed; cut to about 80 characters; empty when nothing is left. A word stays when
/// it is at most 11 visible characters, or at most 40 characters of lower-case letters,
/// at most 4 digits and `-_./:,;()'"=`.
std::string ScrubbedHint(std::string_view text, const std::vector<std::string>& secrets = {});

/// Whether key commands run at all (default true). A fuzzer of the config loader turns
/// them off so that no generated config can start a program; RunKeyCommand then fails
/// with "… not run: key commands are turned off in this process". Not thread-safe
/// against a concurrent config load.
void SetKeyCommandsEnabled(bool enabled);

}  // namespace kpm::server
