#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: `fuzz/run.sh [SECONDS] [TARGET…]` (default
# 30 s each, every target; FUZZ_SEED=N fixes libFuzzer's seed). CI runs the 30 s smoke
# run with a fixed seed; longer runs are by hand.
#
# cargo-fuzz drives libFuzzer, which needs unstable rustc flags (-Zsanitizer=address and
# the coverage instrumentation). The machine has the stable toolchain only;
# RUSTC_BOOTSTRAP=1 lets stable rustc accept those flags. It is set here, for the fuzz
# build alone, never for the project's own build.
#
# Targets are built with `-O` (release) and Cargo.toml turns debug assertions and
# overflow checks back on for wsreg and the harness only: the dependencies behave as in
# the shipped binary. (With them checked too, yrs stops the Yjs target at once on input
# that a release build handles: a debug assertion on 53-bit client ids and a u32 clock
# addition in its update decoder, both reachable from the wire; see docs/security.md.)
#
# Each target starts from its seeds (the shared registry vectors, the request heads in
# seeds/http, the y-websocket frame sequences in seeds/yjs_decode), the inputs kept in
# regressions/<target>/ (a fixed bug that comes back fails the run at once) and what
# earlier runs found in corpus/<target>/ (not committed). A crash stops the run with a
# non-zero exit; libFuzzer saves the input under artifacts/<target>/, the log beside it.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-30}
shift || true
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

# yrs sizes its collections from counts read off the wire with try_reserve: a reservation
# the allocator refuses is a decode error, as in production, not a crash. So the
# allocator may return null and no single allocation is a failure by its size; memory
# actually used is still bounded by libFuzzer's -rss_limit_mb (2 GB).
export ASAN_OPTIONS=allocator_may_return_null=1

echo "==> building ${targets[*]}"
for target in "${targets[@]}"; do
  cargo fuzz build -O "$target" 2>&1 |
    grep -v '^\s*\(Compiling\|Finished\)' || [ "${PIPESTATUS[0]}" = 0 ]
done

summary=()
for target in "${targets[@]}"; do
  case "$target" in
    registry_parse) seeds=(../testdata/vectors/*/ ../testdata/vectors/*/servers/) dict=dict/registry_parse.dict ;;
    guard_headers | http_request) seeds=(seeds/http) dict=dict/http.dict ;;
    *) seeds=("seeds/$target") dict= ;;
  esac
  options=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1 -malloc_limit_mb=1048576)
  [ -n "$dict" ] && options+=(-dict="$dict")
  # A fixed seed (CI sets one) makes a run repeat the same inputs on the same code.
  [ -n "${FUZZ_SEED:-}" ] && options+=(-seed="$FUZZ_SEED")
  mkdir -p "corpus/$target" "regressions/$target" "artifacts/$target"
  echo "==> fuzzing $target for ${seconds}s"
  log="artifacts/$target/last-run.log"
  if ! cargo fuzz run -O "$target" \
    "corpus/$target" "regressions/$target" "${seeds[@]}" -- "${options[@]}" >"$log" 2>&1; then
    grep -A 12 'panicked\|ERROR' "$log" | head -n 40
    echo "fuzz/run.sh: $target failed; the input is under fuzz/artifacts/$target/, the log in $log" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
  corpus=$(find "corpus/$target" -type f | wc -l)
  summary+=("$target: $runs runs in ${seconds}s, $cov, corpus $corpus inputs, no crash")
done

echo "==> fuzz summary"
printf '%s\n' "${summary[@]}"
