#!/usr/bin/env node
// Launcher for the native keypool-mcp binary shipped in this package under
// vendor/<platform>-<arch>/ (the way Codex and opencode ship theirs). It runs the binary
// with this process's stdin, stdout and stderr, so the MCP stream goes straight to it,
// forwards the signals a client sends, and ends the way the binary ended: the same exit
// code, or the same signal.
"use strict";

const { spawn } = require("node:child_process");
const { existsSync } = require("node:fs");
const { constants } = require("node:os");
const path = require("node:path");

const target = `${process.platform}-${process.arch}`;
const binary = path.join(__dirname, "..", "vendor", target, "keypool-mcp");

if (!existsSync(binary)) {
  process.stderr.write(
    `keypool-mcp: this package has no binary for ${target} (looked for ${binary}); ` +
      "see docs/install.md for the .deb or building from source\n");
  process.exit(1);
}

const child = spawn(binary, process.argv.slice(2), { stdio: "inherit" });

const forwarded = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"];
const forward = (signal) => {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
};
for (const signal of forwarded) process.on(signal, forward);

child.on("error", (err) => {
  process.stderr.write(`keypool-mcp: cannot start ${binary}: ${err.message}\n`);
  process.exit(1);
});

child.on("exit", (code, signal) => {
  for (const s of forwarded) process.removeListener(s, forward);
  if (signal) {
    // Default action now: end by the same signal. Node keeps a few for itself (SIGUSR1
    // starts its inspector); for those, the shell's convention 128 + the signal number.
    process.kill(process.pid, signal);
    setTimeout(() => process.exit(128 + (constants.signals[signal] ?? 0)), 200);
    return;
  }
  if (code === 127) {
    process.stderr.write(
      "keypool-mcp: the binary could not start (exit 127); it is built against Debian 12's shared " +
        "libraries (libcurl4, libspdlog1.10, libyaml-cpp0.7, libhiredis0.14, libsqlite3-0, libssl3)\n");
  }
  process.exit(code ?? 1);
});
