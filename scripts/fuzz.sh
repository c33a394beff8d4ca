#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (a separate CMake project; the main build is
# untouched) and runs each one for FUZZ_SECONDS (default 20) seconds, one at a time.
# Before fuzzing a target it replays that target's reproducers in fuzz/crashes/<target>/
# (each must pass once its finding is fixed). Every new crash, leak, timeout or OOM input
# is copied to fuzz/crashes/<target>/found-<kind>-<sha1> (rename it when you write the
# finding up in docs/fuzzing.md).
# Exit status: non-zero when a build fails, a reproducer still fails, or any target finds
# a crash, leak, timeout or failed property.
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 20; a first numeric argument wins)
#   FUZZ_TARGETS    space-separated subset of targets (default: all that were built)
#   FUZZ_BUILD_DIR  build directory (default <repo>/build-fuzz)
#   FUZZ_JOBS       build parallelism (default 1)
#   FUZZ_ARGS       extra libFuzzer flags, e.g. "-max_len=65536"
#   FUZZ_KEEP_GOING 1: do not stop at the first finding (libFuzzer -fork=1 with
#                   -ignore_crashes/-ignore_timeouts/-ignore_ooms: one worker process),
#                   so a known open finding does not end the run
#   FUZZ_SAVE       0: do not copy new findings into fuzz/crashes/ (default 1)
# Usage: scripts/fuzz.sh            # build + run everything, 20 s each
#        scripts/fuzz.sh 60         # 60 s each
#        scripts/fuzz.sh --build-only
#        scripts/fuzz.sh --regress  # only replay fuzz/crashes/<target>/*
#        scripts/fuzz.sh --repro fuzz_config path/to/crash   # run one input
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  SECONDS_PER_TARGET="$1"
  shift
fi
JOBS="${FUZZ_JOBS:-1}"
KEEP_GOING="${FUZZ_KEEP_GOING:-0}"
SAVE="${FUZZ_SAVE:-1}"
ALL_TARGETS=(fuzz_jsonrpc_decode fuzz_modern_envelope fuzz_json_schema fuzz_config fuzz_sse fuzz_rate_limit_hints fuzz_classify
             fuzz_scrubber fuzz_adapters)

log() { printf '[fuzz] %s\n' "$*" >&2; }

# --- Toolchain: clang++ and the libFuzzer runtime (libclang-rt-14-dev) ------------
have_libfuzzer() {
  local cxx="$1"
  local tmp
  tmp="$(mktemp -d)"
  printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long){return 0;}\n' >"$tmp/t.cc"
  local ok=1
  "$cxx" -fsanitize=fuzzer,address,undefined "$tmp/t.cc" -o "$tmp/t" >/dev/null 2>&1 && ok=0
  rm -rf "$tmp"
  return $ok
}

find_clang() {
  for c in clang++ clang++-16 clang++-15 clang++-14; do
    if command -v "$c" >/dev/null 2>&1 && have_libfuzzer "$c"; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

CXX_BIN="$(find_clang || true)"
if [[ -z "$CXX_BIN" ]]; then
  log "clang++ with libFuzzer not found: installing clang and libclang-rt-14-dev"
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev
  CXX_BIN="$(find_clang || true)"
  if [[ -z "$CXX_BIN" ]]; then
    log "still no clang++ that links -fsanitize=fuzzer; giving up"
    exit 2
  fi
fi
log "compiler: $CXX_BIN"

# --- Build --------------------------------------------------------------------------
GEN=()
if command -v ninja >/dev/null 2>&1; then GEN=(-G Ninja); fi
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  cmake -S "$ROOT/fuzz" -B "$BUILD" "${GEN[@]}" -DCMAKE_CXX_COMPILER="$CXX_BIN" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
fi
# One target at a time, so a module that does not compile yet (other engineers are
# still writing it) fails its own target only; the others still build and run.
read -r -a TARGETS <<<"${FUZZ_TARGETS:-${ALL_TARGETS[*]}}"
if [[ "${1:-}" == "--repro" ]]; then TARGETS=("$2"); fi
build_failed=()
for t in "${TARGETS[@]}"; do
  if ! cmake --build "$BUILD" -j"$JOBS" --target "$t" >"$BUILD/$t.build.log" 2>&1; then
    build_failed+=("$t")
    log "$t: BUILD FAILED; see $BUILD/$t.build.log"
    grep -E 'error|undefined reference' "$BUILD/$t.build.log" | head -5 >&2 || true
  fi
done

if [[ "${1:-}" == "--build-only" ]]; then
  ((${#build_failed[@]} == 0)) || exit 1
  exit 0
fi

if [[ "${1:-}" == "--repro" ]]; then
  target="$2"
  shift 2
  exec "$BUILD/$target" "$@"
fi

# --- Run ----------------------------------------------------------------------------
# Leaks are real findings too; ASan's leak check runs at exit of each input batch.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Replays every reproducer of target $1; prints the names of those that still fail.
still_failing() {
  local t="$1" f
  for f in "$ROOT/fuzz/crashes/$t"/*; do
    [[ -f "$f" ]] || continue
    if ! "$BUILD/$t" "$f" >"$BUILD/$t.regress.log" 2>&1; then
      basename "$f"
    fi
  done
}

# Copies each finding libFuzzer wrote for target $1 into fuzz/crashes/$1/, unless a file
# with the same bytes is there already; prints how many it copied.
save_findings() {
  local t="$1" f name dest copied=0
  mkdir -p "$ROOT/fuzz/crashes/$t"
  for f in "$BUILD/artifacts/$t"/crash-* "$BUILD/artifacts/$t"/leak-* "$BUILD/artifacts/$t"/timeout-* \
           "$BUILD/artifacts/$t"/oom-*; do
    [[ -f "$f" ]] || continue
    name="$(basename "$f")"
    dest="$ROOT/fuzz/crashes/$t/found-$name"
    if [[ -e "$dest" ]] || cmp -s "$f" /dev/null; then continue; fi
    local dup=0 g
    for g in "$ROOT/fuzz/crashes/$t"/*; do
      if [[ -f "$g" ]] && cmp -s "$f" "$g"; then dup=1; break; fi
    done
    if ((dup == 0)); then
      cp "$f" "$dest"
      copied=$((copied + 1))
    fi
  done
  echo "$copied"
}

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  bin="$BUILD/$t"
  if [[ " ${build_failed[*]} " == *" $t "* || ! -x "$bin" ]]; then
    failed+=("$t")
    summary+=("$t: BUILD FAILED (see $BUILD/$t.build.log)")
    continue
  fi
  open_findings="$(still_failing "$t" | tr '\n' ' ')"
  if [[ -n "$open_findings" ]]; then
    log "$t: reproducers that still fail: $open_findings"
  fi
  if [[ "${1:-}" == "--regress" ]]; then
    if [[ -n "$open_findings" ]]; then
      failed+=("$t")
      summary+=("$t: reproducers still failing: $open_findings")
    else
      summary+=("$t: every reproducer passes")
    fi
    continue
  fi
  corpus_seed="$ROOT/fuzz/corpus/$t"
  corpus_work="$BUILD/corpus/$t"       # grows as the fuzzer learns; kept between runs
  artifacts="$BUILD/artifacts/$t/"
  rm -rf "$artifacts"                  # this run's findings only (saved ones are in fuzz/crashes/)
  mkdir -p "$corpus_work" "$artifacts"
  dict=()
  [[ -f "$ROOT/fuzz/$t.dict" ]] && dict=(-dict="$ROOT/fuzz/$t.dict")
  mode=()
  if [[ "$KEEP_GOING" == 1 ]]; then mode=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1); fi
  log "$t: fuzzing for ${SECONDS_PER_TARGET}s${mode:+ (keep going)}"
  logfile="$BUILD/$t.log"
  set +e
  # -timeout: one input taking over 10 s is a hang (a finding); -rss_limit_mb keeps a
  # runaway allocation from taking the machine down. Seeds are read, not written.
  # shellcheck disable=SC2086
  "$bin" "$corpus_work" "$corpus_seed" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts" -print_final_stats=1 "${mode[@]}" "${dict[@]}" ${FUZZ_ARGS:-} >"$logfile" 2>&1
  rc=$?
  set -e
  if [[ "$KEEP_GOING" == 1 ]]; then
    # Fork mode: "#<execs>: cov: C ft: F corp: N exec/s E oom/timeout/crash: o/t/c time: ..."
    last="$(grep -E '^#[0-9]+: cov:' "$logfile" | tail -1 || true)"
    execs="$(sed -nE 's/^#([0-9]+):.*/\1/p' <<<"$last")"
    corp="$(sed -nE 's/.*corp: ([0-9]+).*/corpus \1/p' <<<"$last")"
    found="$(sed -nE 's/.*oom\/timeout\/crash: ([0-9]+\/[0-9]+\/[0-9]+).*/oom\/timeout\/crash \1/p' <<<"$last")"
  else
    # (|| true: a run that stops while reading the seeds prints neither)
    execs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$logfile" | grep -oE '[0-9]+$' | tail -1 || true)"
    last="$(grep -E '^#[0-9]+' "$logfile" | tail -1 || true)"
    corp="$(sed -nE 's/.*corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/corpus \1/p' <<<"$last")"
    found=""
  fi
  cov="$(sed -nE 's/.*cov: ([0-9]+) ft: ([0-9]+).*/cov \1 ft \2/p' <<<"$last")"
  saved=0
  if [[ "$SAVE" == 1 ]]; then saved="$(save_findings "$t")"; fi
  saved_note=""
  if ((saved > 0)); then saved_note="; $saved new finding(s) in fuzz/crashes/$t/found-*"; fi
  open_note=""
  if [[ -n "$open_findings" ]]; then open_note="; reproducers still failing: $open_findings"; fi
  if [[ $rc -ne 0 || -n "$open_findings" ]]; then
    failed+=("$t")
    summary+=("$t: FAILED (exit $rc) execs ${execs:-?} ${cov:-} ${corp:-} ${found:-}$saved_note$open_note; see $logfile")
    log "$t: FAILED, exit $rc; log: $logfile"
    grep -E 'ERROR|SUMMARY|^fuzz_[a-z_]+:|Test unit written|runtime error|what\(\)' "$logfile" | sort | uniq -c |
      sort -rn | head -20 >&2 || true
  else
    summary+=("$t: ok execs ${execs:-?} ${cov:-} ${corp:-}")
  fi
done

if [[ "${1:-}" == "--regress" ]]; then
  echo "== fuzz regress (fuzz/crashes/<target>/*) =="
else
  echo "== fuzz summary (${SECONDS_PER_TARGET}s per target${mode:+, keep going}) =="
fi
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "failing targets: ${failed[*]}"
  exit 1
fi
