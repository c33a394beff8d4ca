#!/usr/bin/env bash
# Builds and checks every package of keypool-mcp from an existing build dir (docs/install.md):
#   (a) cmake --install to a temporary prefix     (b) the .deb (cpack, dpkg -x, optionally apt-get)
#   (c) the MCP Bundle (.mcpb)                     (d) the MCP Registry server.json
#   (e) the npm package, run with npx from its packed tarball
# Usage: scripts/package_test.sh [BUILD_DIR]   (default: build; it is reconfigured, and
# keypool-mcp rebuilt only if out of date). One line per check; stops at the first failure.
# KPM_PACKAGE_APT_INSTALL=1 (as root): also `apt-get install ./the.deb`, run it, remove it.
# KPM_PACKAGE_OUT=DIR: keep the artifacts (.deb, .mcpb, npm .tgz, server.json with the
#   bundle's sha256) in DIR; otherwise everything is made in a temp dir, removed on exit.
# Needs: cmake, cpack, dpkg-deb, dpkg-shlibdeps (dpkg-dev), node + npm (npm ci reaches the
# npm registry), sha256sum; groff, if present, lints the man page.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${1:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD

ok() { echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kpm-package.XXXXXX")
APT_INSTALLED=0
WATCH_PID=""
kill_watch() {  # the npm launcher started below, and the binary it started
  local children
  children=$(cat /proc/"$WATCH_PID"/task/*/children 2>/dev/null || true)
  # shellcheck disable=SC2086
  kill -KILL $children "$WATCH_PID" 2>/dev/null || true
}
cleanup() {
  if [[ -n $WATCH_PID ]]; then kill_watch; wait 2>/dev/null || true; fi
  if ((APT_INSTALLED)); then
    DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq keypool-mcp >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
export npm_config_cache=$WORK/npm-cache npm_config_update_notifier=false npm_config_fund=false \
  npm_config_audit=false

[[ -f $BUILD/CMakeCache.txt ]] || fail "no configured build in $BUILD (run cmake -S . -B $BUILD first)"
for tool in cmake cpack dpkg-deb dpkg-shlibdeps node npm npx sha256sum; do
  command -v "$tool" >/dev/null || fail "tool missing: $tool$([[ $tool == dpkg-* ]] && echo ' (package dpkg-dev)')"
done

# --- One home for the version: project() in CMakeLists.txt --------------------
VERSION=$(sed -nE 's/^project\(keypool-mcp VERSION ([0-9][0-9.]*)[ )].*/\1/p' CMakeLists.txt)
[[ -n $VERSION ]] || fail "no version in project() of CMakeLists.txt"
json() { node -e 'const d=require(process.argv[1]);process.stdout.write(String(eval(process.argv[2])))' "$@"; }
declare -A FOUND=(
  [packaging/mcpb/manifest.json]=$(json "$ROOT/packaging/mcpb/manifest.json" d.version)
  [packaging/npm/package.json]=$(json "$ROOT/packaging/npm/package.json" d.version)
  [packaging/server.json]=$(json "$ROOT/packaging/server.json" d.version)
  [packaging/server.json:packages]=$(json "$ROOT/packaging/server.json" \
    '[...new Set(d.packages.map(p=>p.version))].join(",")')
  [packaging/keypool-mcp.1]=$(sed -nE 's/^\.TH .*"keypool-mcp ([^"]+)".*/\1/p' packaging/keypool-mcp.1)
)
for where in "${!FOUND[@]}"; do
  [[ ${FOUND[$where]} == "$VERSION" ]] || fail "version: $where says ${FOUND[$where]:-nothing}, CMakeLists.txt says $VERSION"
done
MCPB_URL=$(json "$ROOT/packaging/server.json" 'd.packages.find(p=>p.registryType==="mcpb").identifier')
[[ $MCPB_URL == */v$VERSION/keypool-mcp-$VERSION-linux-x64.mcpb ]] \
  || fail "version: packaging/server.json's mcpb identifier $MCPB_URL is not the v$VERSION release asset"
NPM_NAME=$(json "$ROOT/packaging/npm/package.json" d.name)
[[ $(json "$ROOT/packaging/npm/package.json" d.mcpName) == $(json "$ROOT/packaging/server.json" d.name) ]] \
  || fail "packaging/npm/package.json mcpName differs from packaging/server.json name"
ok "version $VERSION everywhere: CMakeLists.txt, manifest.json, server.json (and its packages), package.json, man page"

# --- The build dir: reconfigured (install rules, CPack), keypool-mcp up to date ----
cmake -S "$ROOT" -B "$BUILD" >"$WORK/configure.log" 2>&1 || { cat "$WORK/configure.log" >&2; fail "cmake configure of $BUILD"; }
CACHED=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")
[[ $CACHED == "$VERSION" ]] || fail "$BUILD is configured for version $CACHED, CMakeLists.txt says $VERSION"
cmake --build "$BUILD" --target keypool-mcp >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log" >&2; fail "build keypool-mcp"; }
ok "build dir $BUILD configured, keypool-mcp up to date"

expect_version() {  # expect_version WHAT COMMAND...: COMMAND --version prints "keypool-mcp VERSION"
  local what=$1 out; shift
  local rc=0
  out=$("$@" --version 2>"$WORK/stderr") || rc=$?
  ((rc == 0)) || { cat "$WORK/stderr" >&2; fail "$what: --version exited $rc"; }
  [[ $out == "keypool-mcp $VERSION" ]] || fail "$what: --version printed \"$out\", expected \"keypool-mcp $VERSION\""
  ok "$what: --version prints \"$out\""
}

# --- (a) cmake --install to a temporary prefix -------------------------------------
PREFIX=$WORK/prefix
cmake --install "$BUILD" --prefix "$PREFIX" --strip >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log" >&2; fail "cmake --install"; }
[[ -x $PREFIX/bin/keypool-mcp ]] || fail "cmake --install: no executable $PREFIX/bin/keypool-mcp"
expect_version "cmake --install --prefix P: P/bin/keypool-mcp" "$PREFIX/bin/keypool-mcp"
[[ -f $PREFIX/share/man/man1/keypool-mcp.1 ]] || fail "cmake --install: no share/man/man1/keypool-mcp.1"
if command -v groff >/dev/null; then
  warnings=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$PREFIX/share/man/man1/keypool-mcp.1" 2>&1)
  [[ -z $warnings ]] || fail "man page: groff warns: $warnings"
fi
for f in examples/*; do
  cmp -s "$f" "$PREFIX/share/doc/keypool-mcp/$f" || fail "cmake --install: share/doc/keypool-mcp/$f missing or different"
done
for f in README.md docs/*.md; do
  [[ -f $PREFIX/share/doc/keypool-mcp/$(basename "$f") ]] || fail "cmake --install: share/doc/keypool-mcp/$(basename "$f") missing"
done
ok "cmake --install: man page (groff-clean), $(ls examples | wc -l) examples and $(ls docs/*.md | wc -l) docs + README under share/"
set +e
"$PREFIX/bin/keypool-mcp" --config "$WORK/no-such-config.yaml" --check >/dev/null 2>"$WORK/stderr"; rc=$?
set -e
[[ $rc == 2 ]] || fail "installed binary: --check of a missing --config file exited $rc, expected 2"
ok "installed binary: --check of a missing --config file exits 2 ($(head -c 120 "$WORK/stderr"))"

# --- (b) the .deb ----------------------------------------------------------------
cpack --config "$BUILD/CPackConfig.cmake" -G DEB -B "$WORK/deb" >"$WORK/cpack.log" 2>&1 \
  || { cat "$WORK/cpack.log" >&2; fail "cpack -G DEB"; }
DEB=$(ls "$WORK"/deb/keypool-mcp_"$VERSION"_*.deb 2>/dev/null | head -1)
[[ -n $DEB ]] || { cat "$WORK/cpack.log" >&2; fail "cpack -G DEB: no keypool-mcp_${VERSION}_*.deb in its output"; }
ok "cpack -G DEB: $(basename "$DEB") ($(du -k "$DEB" | cut -f1) KiB)"
DEPENDS=$(dpkg-deb -f "$DEB" Depends)
echo "     Depends: $DEPENDS"
[[ -n $DEPENDS ]] || fail ".deb: Depends is empty (CPACK_DEBIAN_PACKAGE_SHLIBDEPS did not compute it; is dpkg-dev installed?)"
for lib in libc6 libcurl4 libsqlite3-0 libssl3 libyaml-cpp; do
  [[ $DEPENDS == *"$lib"* ]] || fail ".deb: Depends has no $lib: $DEPENDS"
done
[[ $(dpkg-deb -f "$DEB" Version) == "$VERSION" ]] || fail ".deb: Version is $(dpkg-deb -f "$DEB" Version)"
ok ".deb: Depends computed by dpkg-shlibdeps (libc6, libcurl4, libsqlite3-0, libssl3, libyaml-cpp among them)"
dpkg-deb -x "$DEB" "$WORK/root"
for f in usr/bin/keypool-mcp usr/share/man/man1/keypool-mcp.1 usr/share/doc/keypool-mcp/examples/full.yaml; do
  [[ -e $WORK/root/$f ]] || fail ".deb: /$f missing"
done
expect_version ".deb unpacked with dpkg -x: /usr/bin/keypool-mcp" "$WORK/root/usr/bin/keypool-mcp"
if [[ ${KPM_PACKAGE_APT_INSTALL:-0} == 1 ]]; then
  [[ $(id -u) == 0 ]] || fail "KPM_PACKAGE_APT_INSTALL=1 needs root"
  if dpkg-query -W -f='${Status}' keypool-mcp 2>/dev/null | grep -q "install ok installed"; then
    fail "apt-get install: keypool-mcp is already installed on this system; not touching it"
  fi
  cp "$DEB" "$WORK/keypool-mcp.deb" && chmod 644 "$WORK/keypool-mcp.deb" && chmod 755 "$WORK"
  APT_INSTALLED=1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$WORK/keypool-mcp.deb" >"$WORK/apt.log" 2>&1 \
    || { cat "$WORK/apt.log" >&2; fail "apt-get install ./$(basename "$DEB")"; }
  [[ $(command -v keypool-mcp) == /usr/bin/keypool-mcp ]] || fail "apt-get install: keypool-mcp is not /usr/bin/keypool-mcp"
  expect_version "apt-get install ./$(basename "$DEB"): keypool-mcp" keypool-mcp
  DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq keypool-mcp >"$WORK/apt.log" 2>&1 \
    || { cat "$WORK/apt.log" >&2; fail "apt-get remove keypool-mcp"; }
  APT_INSTALLED=0
  [[ ! -e /usr/bin/keypool-mcp ]] || fail "apt-get remove: /usr/bin/keypool-mcp still there"
  ok "apt-get remove keypool-mcp: gone again"
else
  echo "skip apt-get install ./$(basename "$DEB") (set KPM_PACKAGE_APT_INSTALL=1, as root, to run it)"
fi

# The validators, pinned by packaging/validate/package-lock.json (a temp copy: the
# source tree is never written).
mkdir -p "$WORK/validate"
for f in package.json package-lock.json check-server-json.mjs server.schema.json; do
  cp "$ROOT/packaging/validate/$f" "$WORK/validate/"
done
(cd "$WORK/validate" && npm ci --no-audit --no-fund --loglevel=error >"$WORK/npm-ci.log" 2>&1) \
  || { cat "$WORK/npm-ci.log" >&2; fail "npm ci in packaging/validate"; }
MCPB=$WORK/validate/node_modules/.bin/mcpb
ok "validators installed by npm ci (packaging/validate): mcpb $("$MCPB" --version), ajv $(json "$WORK/validate/node_modules/ajv/package.json" d.version)"

# --- (c) the MCP Bundle ------------------------------------------------------------
OUT=$WORK/out
mkdir -p "$OUT" "$WORK/bundle/server"
cp "$ROOT/packaging/mcpb/manifest.json" "$WORK/bundle/"
cp "$PREFIX/bin/keypool-mcp" "$WORK/bundle/server/keypool-mcp"
"$MCPB" validate "$WORK/bundle/manifest.json" >"$WORK/mcpb.log" 2>&1 || { cat "$WORK/mcpb.log" >&2; fail "mcpb validate packaging/mcpb/manifest.json"; }
ok "mcpb validate packaging/mcpb/manifest.json: $(tail -1 "$WORK/mcpb.log")"
[[ $(json "$WORK/bundle/manifest.json" d.server.type) == binary ]] || fail "manifest.json: server.type is not binary"
[[ $(json "$WORK/bundle/manifest.json" d.server.entry_point) == server/keypool-mcp ]] || fail "manifest.json: entry_point is not server/keypool-mcp"
[[ $(json "$WORK/bundle/manifest.json" 'd.server.mcp_config.args.join(" ")') == *'${user_config.config_file}'* ]] \
  || fail "manifest.json: the args do not pass user_config.config_file"
BUNDLE=$OUT/keypool-mcp-$VERSION-linux-x64.mcpb
"$MCPB" pack "$WORK/bundle" "$BUNDLE" >"$WORK/mcpb.log" 2>&1 || { cat "$WORK/mcpb.log" >&2; fail "mcpb pack"; }
"$MCPB" unpack "$BUNDLE" "$WORK/unbundled" >"$WORK/mcpb.log" 2>&1 || { cat "$WORK/mcpb.log" >&2; fail "mcpb unpack"; }
CONTENTS=$(cd "$WORK/unbundled" && find . -type f | sort | tr '\n' ' ')
[[ $CONTENTS == "./manifest.json ./server/keypool-mcp " ]] || fail ".mcpb: the zip holds $CONTENTS, expected manifest.json and server/keypool-mcp"
cmp -s "$WORK/unbundled/manifest.json" "$ROOT/packaging/mcpb/manifest.json" || fail ".mcpb: its manifest.json is not packaging/mcpb/manifest.json"
expect_version "mcpb pack, then mcpb unpack: server/keypool-mcp" "$WORK/unbundled/server/keypool-mcp"
ok ".mcpb: $(basename "$BUNDLE") ($(du -k "$BUNDLE" | cut -f1) KiB) holds manifest.json and the executable server/keypool-mcp"

# --- (d) the MCP Registry server.json -----------------------------------------------
node "$WORK/validate/check-server-json.mjs" "$ROOT/packaging/server.json" >"$WORK/schema.log" 2>&1 \
  || { cat "$WORK/schema.log" >&2; fail "packaging/server.json against the registry schema"; }
ok "packaging/server.json: $(sed 's|.*: ||' "$WORK/schema.log")"
# The registry requires the bundle's sha256 at publish time: the release copy gets it.
SHA=$(sha256sum "$BUNDLE" | cut -d' ' -f1)
node -e 'const fs=require("fs");const d=JSON.parse(fs.readFileSync(process.argv[1]));
  d.packages.find(p=>p.registryType==="mcpb").fileSha256=process.argv[2];
  fs.writeFileSync(process.argv[3],JSON.stringify(d,null,2)+"\n")' \
  "$ROOT/packaging/server.json" "$SHA" "$OUT/server.json"
node "$WORK/validate/check-server-json.mjs" "$OUT/server.json" >"$WORK/schema.log" 2>&1 \
  || { cat "$WORK/schema.log" >&2; fail "the release server.json (with fileSha256) against the registry schema"; }
ok "release server.json with the bundle's fileSha256 ${SHA:0:12}…: valid too"

# --- (e) the npm package, run by npx from its tarball --------------------------------
NPM_DIR=$WORK/npm
cp -r "$ROOT/packaging/npm" "$NPM_DIR"
TARGET=$(node -p 'process.platform+"-"+process.arch')
mkdir -p "$NPM_DIR/vendor/$TARGET"
cp "$PREFIX/bin/keypool-mcp" "$NPM_DIR/vendor/$TARGET/keypool-mcp"
(cd "$NPM_DIR" && npm pack --pack-destination "$OUT" --loglevel=error >"$WORK/npm-pack.log" 2>&1) \
  || { cat "$WORK/npm-pack.log" >&2; fail "npm pack packaging/npm"; }
TGZ=$OUT/$NPM_NAME-$VERSION.tgz
[[ -f $TGZ ]] || fail "npm pack: no $(basename "$TGZ")"
tar -tzvf "$TGZ" >"$WORK/tgz.list"
grep -qE "^-rwx.* package/vendor/$TARGET/keypool-mcp$" "$WORK/tgz.list" || fail "npm tarball: no executable package/vendor/$TARGET/keypool-mcp"
grep -qE "^-rwx.* package/bin/keypool-mcp.js$" "$WORK/tgz.list" || fail "npm tarball: no executable package/bin/keypool-mcp.js"
ok "npm pack: $(basename "$TGZ") ($(du -k "$TGZ" | cut -f1) KiB) holds bin/keypool-mcp.js and vendor/$TARGET/keypool-mcp"
mkdir -p "$WORK/npx-cwd"
# --offline: the tarball has no dependencies, so nothing may come from a registry.
expect_version "npx --yes --offline --package ./$(basename "$TGZ") keypool-mcp" \
  env -C "$WORK/npx-cwd" npx --yes --offline --loglevel=error --package "$TGZ" -- keypool-mcp
set +e
(cd "$WORK/npx-cwd" && npx --yes --offline --loglevel=error --package "$TGZ" -- keypool-mcp --config "$WORK/no-such-config.yaml" --check >/dev/null 2>&1); rc=$?
set -e
[[ $rc == 2 ]] || fail "npx tarball: --check of a missing --config file exited $rc, expected the binary's 2"
ok "npx tarball: the binary's exit code comes through (--check of a missing --config file: 2)"
# Signals, through the launcher installed from the tarball into a temp prefix: SIGTERM to
# it reaches the binary (`status --watch` stops on it, exit 0), and the binary killed by a
# signal ends the launcher by the same signal.
npm install --offline --global --prefix "$WORK/npm-prefix" "$TGZ" --loglevel=error >"$WORK/npm-install.log" 2>&1 \
  || { cat "$WORK/npm-install.log" >&2; fail "npm install of the tarball into a temp prefix"; }
cat >"$WORK/watch.yaml" <<EOF
providers:
  openai:
    apiKey: \$KPM_PACKAGE_TEST_KEY
state: { type: sqlite, path: $WORK/state.db }
EOF
start_watch() {  # sets WATCH_PID (the launcher) once the binary has printed its table
  rm -f "$WORK"/watch.{out,err,pid,rc}
  # A subshell waits for the launcher and writes its status: bash's own "Killed" notice
  # goes to the subshell's stderr, /dev/null, not into this script's output.
  ( KPM_PACKAGE_TEST_KEY=sk-canary-package-test-0000 \
      "$WORK/npm-prefix/bin/keypool-mcp" --config "$WORK/watch.yaml" status --watch >"$WORK/watch.out" 2>"$WORK/watch.err" &
    echo $! >"$WORK/watch.pid"; rc=0; wait $! || rc=$?; echo $rc >"$WORK/watch.rc" ) 2>/dev/null &
  for _ in $(seq 100); do [[ -s $WORK/watch.pid ]] && break; sleep 0.05; done
  WATCH_PID=$(cat "$WORK/watch.pid")
  for _ in $(seq 100); do [[ -s $WORK/watch.out ]] && return; sleep 0.1; done
  cat "$WORK/watch.err" >&2; fail "npm launcher: status --watch printed nothing in 10 s"
}
wait_watch() {  # sets WATCH_RC; fails if the launcher still runs 10 s after $1
  for _ in $(seq 100); do [[ -s $WORK/watch.rc ]] && break; sleep 0.1; done
  [[ -s $WORK/watch.rc ]] || fail "npm launcher: still running 10 s after $1"
  WATCH_RC=$(cat "$WORK/watch.rc")
  WATCH_PID=""
}
start_watch
kill -TERM "$WATCH_PID"
wait_watch "SIGTERM"
[[ $WATCH_RC == 0 ]] || { cat "$WORK/watch.err" >&2; fail "npm launcher: SIGTERM during status --watch ended with $WATCH_RC, expected 0 (forwarded to the binary)"; }
ok "npm launcher: SIGTERM is forwarded to the binary (status --watch stops, exit 0)"
start_watch
CHILD=$(cat /proc/"$WATCH_PID"/task/*/children 2>/dev/null | tr -s ' ' '\n' | grep -m1 . || true)
if [[ -z $CHILD || $(readlink /proc/"$CHILD"/exe) != */vendor/"$TARGET"/keypool-mcp ]]; then
  fail "npm launcher: its child ${CHILD:-(none)} is not the vendored binary"
fi
kill -KILL "$CHILD"
wait_watch "its binary was killed"
[[ $WATCH_RC == 137 ]] || fail "npm launcher: the binary killed by SIGKILL ended the launcher with $WATCH_RC, expected 137 (SIGKILL)"
ok "npm launcher: the binary killed by SIGKILL ends the launcher by SIGKILL too (status 137)"

if [[ -n ${KPM_PACKAGE_OUT:-} ]]; then
  mkdir -p "$KPM_PACKAGE_OUT"
  cp "$DEB" "$BUNDLE" "$TGZ" "$OUT/server.json" "$KPM_PACKAGE_OUT/"
  echo "     artifacts kept in $KPM_PACKAGE_OUT"
fi
echo "== all package checks passed (keypool-mcp $VERSION)"
