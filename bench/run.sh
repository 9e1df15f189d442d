#!/usr/bin/env bash
# Runs every benchmark of issues 6 and 11 against its Node baseline and, for the registry
# (issue 11), against wsreg's last registry-v1 build, and rewrites docs/benchmarks.md.
# `--quick` shortens every run (about 5 minutes in all). `--only echo,idle,…` runs those
# benchmarks only (the names of `wsreg-bench run --help`) and writes their report to
# target/bench-partial.md, leaving docs/benchmarks.md to whole runs; the criterion benches
# run only with `registry` among them.
#
# Sets up what it needs: wrk (Debian package, when run as root), the npm packages,
# release builds of `wsreg` and of the harness `wsreg-bench` (bench/loadgen), and, when
# missing, the v1 `wsreg` built from commit 3aeff1c in a git worktree at target/v1-src
# (target dir target/v1; delete target/v1/release/wsreg to rebuild it). The
# criterion benches of the registry run first; `wsreg-bench run` then measures the rest
# and writes the report, reading the criterion medians back. All load goes to 127.0.0.1.
# Not part of ./test.sh: it takes minutes and its figures depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=()
only=()
criterion=(--warm-up-time 1 --measurement-time 3 --sample-size 30)
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=(--quick); criterion=(--warm-up-time 0.5 --measurement-time 1 --sample-size 10) ;;
    --only) [ $# -ge 2 ] || { echo "bench/run.sh: --only needs a list" >&2; exit 2; }
            only=(--only "$2" --out target/bench-partial.md); shift ;;
    *) echo "usage: bench/run.sh [--quick] [--only BENCH,…]" >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n==> %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing wrk (Debian package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "bench/run.sh: wrk is missing; install it with: sudo apt-get install -y wrk" >&2
    exit 1
  fi
fi
if ! [ -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "npm ci"
  npm ci --no-audit --no-fund
fi

# 10,000 idle connections need as many descriptors in the server and in the clients.
ulimit -n "$(ulimit -Hn)"

step "cargo build --release (wsreg, wsreg-bench)"
# Two builds: the harness turns on wsreg's etcd feature (for `wsreg-bench etcd`), and the
# wsreg measured here is the one users build, without it.
cargo build --release --quiet -p wsreg-bench --bins
cargo build --release --quiet -p wsreg --bins

V1_COMMIT=3aeff1c
if ! [ -x target/v1/release/wsreg ]; then
  step "building wsreg v1 ($V1_COMMIT) into target/v1"
  if ! [ -d target/v1-src ]; then
    git worktree add --detach target/v1-src "$V1_COMMIT"
  fi
  (cd target/v1-src && CARGO_TARGET_DIR="$PWD/../v1" cargo build --release --quiet --bin wsreg)
fi

if [ ${#only[@]} -eq 0 ] || [[ ",${only[1]}," == *,registry,* ]]; then
  step "criterion: registry operations"
  cargo bench --quiet -p wsreg --bench registry -- "${criterion[@]}" >&2
fi

step "wsreg-bench run ${quick[*]} ${only[*]}"
exec target/release/wsreg-bench run "${quick[@]}" "${only[@]}" --command "bench/run.sh ${quick[*]} ${only[*]:0:2}"
