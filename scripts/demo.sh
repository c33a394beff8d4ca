#!/usr/bin/env bash
# The demo command (README): installs what is missing, builds the server and the
# bundled mock upstream, then drives a real MCP session (official TypeScript SDK)
# in which the first key is rate limited, the second revoked and the third good.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --with-node
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "${JOBS:-$(nproc)}" --target keypool-mcp mock-upstream >/dev/null
(cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
exec node scripts/demo.mjs build/keypool-mcp build/tests/mock-upstream
