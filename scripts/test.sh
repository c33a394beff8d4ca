#!/usr/bin/env bash
# The test command (README): installs what is missing, builds from scratch, runs
# every test: unit, integration, end-to-end over real pipes, the official MCP SDK
# client; then all of them again under ASan+UBSan, and the keypool suite under TSan.
# KPM_SKIP_ASAN=1 skips the ASan pass for a quicker local run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-$(nproc)}

bash scripts/deps.sh --with-node

# Dependencies point one way (STYLE.md §1), one row per module: what it must not include.
check_includes() {  # check_includes DIR REGEX WHY
  if grep -rnE "#include [<\"]($2)" "$1"; then
    echo "architecture check failed: $1/ $3" >&2; exit 1
  fi
}
check_includes common   'keypool/|providers/|mcp/|server/|protocol/|nlohmann/|curl/|yaml-cpp/|httplib|spdlog/' "is the leaf: std only"
check_includes protocol 'keypool/|providers/|mcp/|server/|curl/|yaml-cpp/|httplib|spdlog/' "knows JSON-RPC and MCP messages only"
check_includes keypool  'providers/|mcp/|server/|protocol/|nlohmann/|curl/|yaml-cpp/|httplib' "knows no HTTP, JSON or YAML"
check_includes providers 'mcp/|server/|protocol/|yaml-cpp/|httplib' "must not reach up into mcp/, server/ or protocol/"
check_includes mcp      'keypool/|providers/|server/|curl/|yaml-cpp/|httplib' "is a generic MCP server: no keys, no providers, no app"
check_includes state    'providers/|mcp/|server/|protocol/|curl/|yaml-cpp/|httplib' "stores key state: no HTTP, no providers, no app"
check_includes server   'curl/|httplib' "reaches HTTP through providers/ only"
if grep -rlE '#include <curl/' providers | grep -vE 'providers/(curl_http_client|base_url)\.cc$'; then
  echo "architecture check failed: libcurl belongs in providers/curl_http_client.cc and base_url.cc only" >&2; exit 1
fi
if grep -rnE 'std::cout|printf\(|puts\(' server mcp protocol providers keypool state common \
     | grep -v 'mcp/stdio_transport.cc' | grep -v 'server/main.cc' | grep -v snprintf; then
  echo "stdout check failed: only mcp/stdio_transport.cc (and main's --check/--help) may write to stdout" >&2; exit 1
fi

echo "== build (RelWithDebInfo, -Werror)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$JOBS"

echo "== MCP TypeScript SDK client (npm ci, pinned by tests/sdk/package-lock.json)"
if [[ -f tests/sdk/package-lock.json ]]; then
  (cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== tests"
(cd build && ctest --output-on-failure -j "$JOBS" --timeout 300)

echo "== packages: cmake --install, .deb, .mcpb, server.json, npm (scripts/package_test.sh)"
bash scripts/package_test.sh build

if [[ "${KPM_SKIP_ASAN:-0}" != 1 ]]; then
  echo "== every test again under AddressSanitizer + UndefinedBehaviorSanitizer (server binary included)"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug "-DKPM_SANITIZE=address,undefined" >/dev/null
  cmake --build build-asan -j "$JOBS"
  (cd build-asan && ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
     ctest --output-on-failure -j "$JOBS" --timeout 300)
fi

echo "== Release build of every target (-O3 -Werror with this compiler; no test run)"
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DKPM_BUILD_BENCH=ON >/dev/null
cmake --build build-release -j "$JOBS"

echo "== every test again under ThreadSanitizer (server binary and fibers included)"
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKPM_SANITIZE=thread >/dev/null
cmake --build build-tsan -j "$JOBS"
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/../tests/tsan.supp" \
   ctest --output-on-failure -j "$JOBS" --timeout 300)
echo "== all tests passed"
