#!/usr/bin/env bash
# Installs the Debian packages keypool-mcp needs, only those missing.
# Sourced by scripts/test.sh and scripts/demo.sh; safe to run again.
set -euo pipefail

KPM_PACKAGES=(cmake ninja-build g++ pkg-config
  nlohmann-json3-dev libcurl4-openssl-dev libspdlog-dev catch2
  libyaml-cpp-dev libcpp-httplib-dev libcli11-dev
  libsqlite3-dev libssl-dev libhiredis-dev redis-server
  dpkg-dev libvalijson-dev)  # dpkg-shlibdeps computes the .deb's Depends; valijson checks the config schema
if [[ "${1:-}" == "--with-node" ]]; then
  command -v node >/dev/null 2>&1 || KPM_PACKAGES+=(nodejs)
  command -v npm >/dev/null 2>&1 || KPM_PACKAGES+=(npm)
fi

missing=()
for p in "${KPM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
