#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: `fuzz/run.sh [SECONDS] [TARGET…]` (default
# 30 s each, every target). CI runs the 30 s smoke run; longer runs are by hand.
#
# cargo-fuzz drives libFuzzer, which needs unstable rustc flags (-Zsanitizer=address and
# the coverage instrumentation). The machine has the stable toolchain only;
# RUSTC_BOOTSTRAP=1 lets stable rustc accept those flags. It is set here, for the fuzz
# build alone, never for the project's own build.
#
# Each target starts from its seeds (the shared registry vectors, or the request heads in
# seeds/http), the crashes kept in regressions/<target>/ (replayed first: a fixed bug that
# comes back fails the run at once) and what earlier runs found in corpus/<target>/
# (not committed). A crash stops the run with a non-zero exit; libFuzzer saves the input
# under artifacts/<target>/ and prints the command that reproduces it.
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

echo "==> building ${targets[*]}"
for target in "${targets[@]}"; do
  cargo fuzz build "$target" 2>&1 | grep -v '^\s*\(Compiling\|Finished\)' || true
done

summary=()
for target in "${targets[@]}"; do
  case "$target" in
    registry_parse) seeds=(../testdata/vectors/*/) dict=dict/registry_parse.dict ;;
    guard_headers | http_request) seeds=(seeds/http) dict=dict/http.dict ;;
    *) seeds=("seeds/$target") dict="dict/$target.dict" ;;
  esac
  mkdir -p "corpus/$target" "regressions/$target"
  echo "==> fuzzing $target for ${seconds}s"
  log=$(mktemp)
  if ! cargo fuzz run "$target" "corpus/$target" "regressions/$target" "${seeds[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -dict="$dict" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz/run.sh: $target failed; the input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
  corpus=$(find "corpus/$target" -type f | wc -l)
  summary+=("$target: $runs runs in ${seconds}s, $cov, corpus $corpus inputs, no crash")
  rm -f "$log"
done

echo "==> fuzz summary"
printf '%s\n' "${summary[@]}"
