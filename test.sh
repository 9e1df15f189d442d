#!/usr/bin/env bash
# The whole test suite: the one command README.md names and .ci/run calls.
# Sets up what it needs on a fresh machine (Chromium from Debian, npm packages), then
# runs formatting and lint checks, the Rust tests, the JavaScript type check and tests,
# and the browser tests. Any failure stops it with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

if ! [ -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing Chromium (Debian package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test.sh: /usr/bin/chromium is missing; install it with: sudo apt-get install -y chromium" >&2
    exit 1
  fi
fi

# etcd (the etcd backend's tests run a real cluster), protoc (the etcd client crate
# compiles etcd's .proto files) and openssl (the etcd TLS test's certificates): Debian's.
if ! command -v etcd >/dev/null || ! command -v protoc >/dev/null || ! command -v openssl >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing etcd, protoc and openssl (Debian packages)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server protobuf-compiler openssl >/dev/null
  else
    echo "test.sh: etcd, protoc or openssl is missing; install them with: sudo apt-get install -y etcd-server protobuf-compiler openssl" >&2
    exit 1
  fi
fi

if ! [ -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "npm ci"
  npm ci --no-audit --no-fund
fi

step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings
# and wsreg as users build it, without the etcd feature
cargo clippy --all-targets --quiet -- -D warnings

step "cargo doc (every intra-doc link resolves)"
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps --workspace --all-features

step "cargo build (the binary the JavaScript and browser tests start)"
cargo build --quiet --workspace --all-features --bins
export WSREG_BIN="$PWD/target/debug/wsreg"

step "Rust tests"
# Tests that need root (mounting a tmpfs, chown) are #[ignore]d; as root they run too.
# Elsewhere the runner's summary counts them as skipped, and under CI that is an error.
ignored=() test_ignored=()
if [ "$(id -u)" = 0 ]; then
  ignored=(--run-ignored all) test_ignored=(--include-ignored)
elif [ "${CI:-}" = true ]; then
  echo "test.sh: CI must run as root: the disk-fault and file-owner tests need it" >&2
  exit 1
fi
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --workspace --all-features --no-fail-fast "${ignored[@]}"
  cargo test --quiet --workspace --all-features --doc
else
  cargo test --workspace --all-features --no-fail-fast -- "${test_ignored[@]}"
fi

step "WebSocket conformance: the Autobahn fuzzing client against wsreg echo (docs/autobahn.md)"
conformance/autobahn.sh

step "fuzz smoke run: every target 30 s, fixed seed (fuzz/run.sh; installs cargo-fuzz if missing)"
FUZZ_SEED=1 fuzz/run.sh 30

step "JavaScript type check (tsc --checkJs --noEmit)"
npm run --silent typecheck

# Under CI a test that did not run is an error, as for the Rust tests above: the runner's
# summary ($2 matches it) must count no skipped test in the log $1.
no_skips() {
  if [ "${CI:-}" = true ] && grep -qE "$2" "$1"; then
    echo "test.sh: under CI every test must run; skipped: $(grep -E 'SKIP|skipped' "$1" | head -5)" >&2
    exit 1
  fi
}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

step "Python library tests (python/wsreg, standard library only)"
python3 -m unittest discover -s python/tests -t python -v 2>&1 | tee "$logs/python"
no_skips "$logs/python" 'skipped=[1-9]'

step "JavaScript and browser tests (node --test)"
npm test 2>&1 | tee "$logs/js"
no_skips "$logs/js" '^# skipped [1-9]'
