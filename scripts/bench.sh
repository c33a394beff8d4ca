#!/usr/bin/env bash
# Builds the benchmarks (Release) and runs them: bench_keypool (micro, in process),
# bench_e2e (keypool-mcp against mock-upstream over loopback), bench_concurrency (the
# issue 9 goals, each with PASS/MISS) and bench_state (the issue 10 goals: what state:
# sqlite / redis add per call, and how fast a 429 reaches another process; it starts its
# own redis-server). See docs/benchmarks.md.
#
#   scripts/bench.sh [--quick] [--no-build] [--jobs N] [--build-dir DIR]
#
# --quick: 10x fewer micro iterations, N=50 end-to-end calls, 10k instead of 100k calls for
# the RSS goal, 20 instead of 50 propagation rounds (a smoke run, ~1 min).
# The build directory defaults to $KPM_BENCH_BUILD_DIR, else build-bench/ in the repo.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KPM_BENCH_BUILD_DIR:-$root/build-bench}"
jobs=2
quick=()
e2e_args=()
do_build=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=(--quick); e2e_args=(--quick); shift ;;
    --no-build) do_build=0; shift ;;
    --jobs) jobs="$2"; shift 2 ;;
    --build-dir) build="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [[ $do_build -eq 1 ]]; then
  gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DKPM_BUILD_BENCH=ON -DKPM_BUILD_TESTS=OFF >/dev/null
  fi
  cmake --build "$build" -j"$jobs" --target bench_keypool bench_e2e bench_concurrency bench_state
fi

bench_keypool="$(find "$build" -name bench_keypool -type f -perm -u+x | head -1)"
bench_e2e="$(find "$build" -name bench_e2e -type f -perm -u+x | head -1)"
bench_concurrency="$(find "$build" -name bench_concurrency -type f -perm -u+x | head -1)"
bench_state="$(find "$build" -name bench_state -type f -perm -u+x | head -1)"
[[ -x "$bench_keypool" && -x "$bench_e2e" && -x "$bench_concurrency" && -x "$bench_state" ]] ||
  { echo "bench.sh: binaries not found under $build" >&2; exit 1; }

echo "# $(date -u +%FT%TZ)  $(uname -srm)  $(nproc) cpus  git $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench_keypool" "${quick[@]}"
echo
"$bench_e2e" "${e2e_args[@]}"
echo
"$bench_concurrency" "${quick[@]}"
echo
"$bench_state" "${quick[@]}"
echo
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
