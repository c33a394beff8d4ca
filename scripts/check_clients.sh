#!/usr/bin/env bash
# Checks `keypool-mcp register CLIENT` against the real clients' own parsers (docs/clients.md):
# installs Claude Code, Gemini CLI, opencode and Codex CLI from npm at the versions below into
# a cache dir, points HOME (and the XDG dirs) at a temp dir, writes each client's config from
# `register` output, and runs the client's own listing command. Claude Code, Gemini CLI and
# opencode start the server to list it ("connected"); Codex's `mcp get --json` shows the parsed
# entry, `codex app-server`'s mcpServerStatus/list starts the server and lists its tools, and
# its mcpServer/tool/call runs key_status to show the key variables reached the server (and,
# as a control, that they do not without `env_vars`).
# No model is called and no account is needed. Not in the default test run: the first run
# downloads about 1.3 GB (npm packages and the native
# binaries they fetch); later runs reuse the cache.
#
#   scripts/check_clients.sh [path/to/keypool-mcp]    (default: build/keypool-mcp)
#   KPM_CLIENTS_CACHE=dir  where the clients are installed (default ~/.cache/keypool-mcp-clients)
set -euo pipefail

CLAUDE_VERSION=2.1.331
GEMINI_VERSION=0.61.0
OPENCODE_VERSION=1.18.33
CODEX_VERSION=0.171.0

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$(realpath "${1:-$ROOT/build/keypool-mcp}")"
CACHE="${KPM_CLIENTS_CACHE:-$HOME/.cache/keypool-mcp-clients}"
[[ -x "$BIN" ]] || { echo "check_clients: $BIN is not built (cmake --build build --target keypool-mcp)" >&2; exit 2; }
command -v node >/dev/null && command -v npm >/dev/null && command -v python3 >/dev/null ||
  { echo "check_clients: needs node, npm and python3" >&2; exit 2; }

# --- install (once per version set) -------------------------------------------------------
STAMP="$CACHE/.installed-$CLAUDE_VERSION-$GEMINI_VERSION-$OPENCODE_VERSION-$CODEX_VERSION"
if [[ ! -f "$STAMP" ]]; then
  mkdir -p "$CACHE"
  echo "check_clients: installing the clients into $CACHE" >&2
  npm install --prefix "$CACHE" --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$CLAUDE_VERSION" "@google/gemini-cli@$GEMINI_VERSION" \
    "opencode-ai@$OPENCODE_VERSION" "@openai/codex@$CODEX_VERSION" >&2
  # npm 11 leaves install scripts unrun unless allowed; these two fetch the native binaries.
  (cd "$CACHE/node_modules/@anthropic-ai/claude-code" && node install.cjs) >&2
  (cd "$CACHE/node_modules/opencode-ai" && node postinstall.mjs) >&2
  touch "$STAMP"
fi
export PATH="$CACHE/node_modules/.bin:$PATH"

# --- a hermetic home with a config whose keys name variables ------------------------------
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config" XDG_DATA_HOME="$WORK/home/.local/share"
export XDG_STATE_HOME="$WORK/home/.local/state" XDG_CACHE_HOME="$WORK/home/.cache"
unset CODEX_HOME KEYPOOL_CONFIG KEYPOOL_LOG_LEVEL
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_STATE_HOME"
CFG="$WORK/home/keypool.yaml"
cat > "$CFG" <<'EOF'
providers:
  openrouter:
    type: openrouter
    baseUrl: http://127.0.0.1:9/api/v1
    apiKey: [$KPM_CHECK_OR_KEY_1, $KPM_CHECK_OR_KEY_2]
    deadlineMs: 90000
  openai:
    type: openai
    baseUrl: http://127.0.0.1:9/v1
    apiKey: $KPM_CHECK_OPENAI_KEY_1
    deadlineMs: 150000
EOF
# Canary values (never real keys): the server starts with them and no request is made.
export KPM_CHECK_OR_KEY_1=sk-canary-Ka7Qz2XwLp9Rt4VbNcAA1111
export KPM_CHECK_OR_KEY_2=sk-canary-Mb3Wy8UvJq5Ps1TdHeBB2222
export KPM_CHECK_OPENAI_KEY_1=sk-canary-Pc5Xz1RsTk8Lm2QwJfCC3333
cd "$HOME"

failures=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
# expect NAME TEXT NEEDLE...: every needle occurs in TEXT.
expect() {
  local name="$1" text="$2"; shift 2
  for needle in "$@"; do
    if [[ "$text" != *"$needle"* ]]; then fail "$name: no \"$needle\" in:"; printf '%s\n' "$text"; return; fi
  done
  pass "$name"
}
register() { "$BIN" register "$1" --config "$CFG" 2>"$WORK/register-$1.err"; }
run() { timeout 120 "$@" 2>&1 || echo "(exit $?)"; }
echo "client versions: claude $(claude --version 2>&1 | head -1), gemini $(gemini --version 2>&1 | tail -1)," \
     "opencode $(opencode --version 2>&1 | tail -1), $(codex --version 2>/dev/null | tail -1)"

# --- Claude Code: the printed command, then `claude mcp list` / `get` (both connect) ---------
echo "== claude"
register claude > "$WORK/claude.sh"
out="$(run bash "$WORK/claude.sh")"; echo "$out"
out="$(run claude mcp list)"; echo "$out"
expect "claude mcp list shows the server connected" "$out" "keypool: $BIN --config $CFG - ✔ Connected"
out="$(run claude mcp get keypool)"; echo "$out"
expect "claude mcp get shows the command and args" "$out" "Status: ✔ Connected" "Command: $BIN" "Args: --config $CFG"
timeout="$(node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(j.mcpServers.keypool.timeout)' "$HOME/.claude.json" 2>&1 || true)"
expect "claude stored the tool timeout (deadlineMs 150000 + 10000)" "$timeout" "160000"
# Claude Code keeps the server's stderr: its start line counts the keys it got, and a key whose
# variable did not arrive would have a "… is not set; key … is disabled" warning.
log="$(cat "$(find "$HOME" -path '*mcp-logs-keypool*' -name '*.jsonl' | head -1)" 2>/dev/null || true)"
expect "claude's log of the server's stderr has the server's start line" "$log" "started: 2 provider(s), 3 key(s)"
if [[ "$log" == *"is not set"* ]]; then fail "claude: a key variable did not reach the server"; else
  pass "claude: every key variable reached the server (no \"is not set\" in its stderr)"; fi

# --- Gemini CLI: settings.json, a trusted folder, `gemini mcp list` (connects) -------------
echo "== gemini"
mkdir -p "$HOME/.gemini"
register gemini > "$HOME/.gemini/settings.json"
# Gemini suppresses every server in a folder it does not trust (the prompt a person answers once).
printf '{"%s": "TRUST_FOLDER"}\n' "$HOME" > "$HOME/.gemini/trustedFolders.json"
out="$(run gemini mcp list)"; echo "$out"
expect "gemini mcp list shows the server connected" "$out" "keypool: $BIN --config $CFG (stdio) - Connected"

# --- opencode: opencode.json, `opencode mcp list` (connects) -------------------------------
echo "== opencode"
mkdir -p "$XDG_CONFIG_HOME/opencode"
register opencode > "$XDG_CONFIG_HOME/opencode/opencode.json"
out="$(run opencode mcp list | sed 's/\x1b\[[0-9;]*m//g')"; echo "$out"
expect "opencode mcp list shows the server connected" "$out" "keypool connected" "$BIN --config $CFG"

# --- Codex: config.toml, `codex mcp get --json`, then app-server mcpServerStatus/list ------
echo "== codex"
mkdir -p "$HOME/.codex"
register codex > "$HOME/.codex/config.toml"
out="$(timeout 60 codex mcp list 2>/dev/null || true)"; echo "$out"
got="$(timeout 60 codex mcp get keypool --json 2>/dev/null || true)"; echo "$got"
if BIN="$BIN" CFG="$CFG" node -e '
  const g = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const want = {command: process.env.BIN, args: ["--config", process.env.CFG],
                env_vars: ["KPM_CHECK_OR_KEY_1", "KPM_CHECK_OR_KEY_2", "KPM_CHECK_OPENAI_KEY_1"]};
  const t = g.transport;
  const ok = g.enabled && t.type === "stdio" && t.command === want.command &&
             JSON.stringify(t.args) === JSON.stringify(want.args) &&
             JSON.stringify(t.env_vars) === JSON.stringify(want.env_vars) &&
             g.tool_timeout_sec === 160 && g.startup_timeout_sec === 30;
  process.exit(ok ? 0 : 1);' <<<"$got"; then
  pass "codex mcp get shows command, args, env_vars and timeouts 160 s / 30 s"
else
  fail "codex mcp get: not the entry register printed"
fi
# app-server over stdio: mcpServerStatus/list starts the server and lists its tools; then a
# thread (no model turn) and mcpServer/tool/call key_status show which keys the server got:
# the one end-to-end proof here that the pass-through lines reach the server.
codex_app_server() {
  timeout 90 python3 - codex app-server <<'PY' || echo "(app-server driver exit $?)"
import json, select, subprocess, sys, time
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, text=True)
seen = []  # what else the app-server said, for the message when a reply does not come
def send(m):
    p.stdin.write(json.dumps(m) + "\n"); p.stdin.flush()
def reply(i, t=45):
    end = time.time() + t
    while time.time() < end:
        if select.select([p.stdout], [], [], 1)[0]:
            line = p.stdout.readline()
            if not line: return {}
            try: m = json.loads(line)
            except ValueError: continue
            if m.get("id") == i and "method" not in m: return m
            seen.append(m.get("method", "?"))
    return {}
send({"id": 1, "method": "initialize", "params": {"clientInfo": {"name": "check_clients", "version": "0"}}})
reply(1); send({"method": "initialized"})
send({"id": 2, "method": "mcpServerStatus/list", "params": {}})
for s in reply(2).get("result", {}).get("data", []):
    print(s["name"] + ": server " + (s.get("serverInfo") or {}).get("name", "none") +
          ", tools " + " ".join(sorted((s.get("tools") or {}).keys())))
send({"id": 3, "method": "thread/start", "params": {}})
tid = reply(3).get("result", {}).get("thread", {}).get("id")
send({"id": 4, "method": "mcpServer/tool/call",
      "params": {"server": "keypool", "threadId": tid, "tool": "key_status", "arguments": {}}})
r = reply(4)
for prov in r.get("result", {}).get("structuredContent", {}).get("providers", []):
    for k in prov["keys"]:
        print("key_status " + k["label"] + " " + k["fingerprint"] + " " + k["state"] +
              (" (" + k["reason"] + ")" if k.get("reason") else ""))
if not r.get("result", {}).get("structuredContent"):
    print("key_status: no result (thread " + str(tid) + "): " + json.dumps(r)[:600] + "; meanwhile: " + " ".join(seen[-20:]))
p.kill()
PY
}
out="$(codex_app_server)"; echo "$out"
expect "codex app-server mcpServerStatus/list started the server and listed its tools" "$out" \
  "keypool: server keypool-mcp, tools check_keys complete key_status list_models"
expect "codex passed every key variable to the server (key_status: all ready)" "$out" \
  "key_status openrouter#1 sk-…1111 ready" "key_status openrouter#2 sk-…2222 ready" \
  "key_status openai#1 sk-…3333 ready"
# The control: without env_vars the same keys are unset in the server, as the issue says,
# and the server, told by clientInfo that this is Codex, says in the reason how to fix it.
sed -i '/^env_vars = /d' "$HOME/.codex/config.toml"
out="$(codex_app_server)"; echo "(without env_vars)"; echo "$out"
expect "without env_vars codex leaves the key variables unset and the reason says to add env_vars" "$out" \
  "key_status openrouter#1 (no key) disabled (environment variable KPM_CHECK_OR_KEY_1 is not set in this server's environment; Codex passes only a few variables to MCP servers: add env_vars = [\"KPM_CHECK_OR_KEY_1\"]"

# --- the clients this script cannot run (desktop apps): the output must at least parse -----
for c in cursor vscode claude-desktop; do
  if register "$c" | node -e 'JSON.parse(require("fs").readFileSync(0, "utf8"))'; then
    pass "$c: register prints JSON (the app itself is not run here)"
  else
    fail "$c: register output is not JSON"
  fi
done

if ((failures)); then echo "check_clients: $failures check(s) failed"; exit 1; fi
echo "check_clients: every check passed"
