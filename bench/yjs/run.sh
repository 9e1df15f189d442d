#!/usr/bin/env bash
# wsreg yjs against the reference y-websocket server, same loads, same run (see
# bench/yjs/bench.js). Installs the reference server and the clients into
# bench/yjs/node_modules (not the workspace's), builds target/release/wsreg and the floor
# (target/release/wsreg-bench ws-fanout), and writes the table into the `yjs` section of
# docs/benchmarks.md.
#   bench/yjs/run.sh [--quick]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
# Two builds, the floor first: built together, Cargo would unify wsreg's features with
# the harness's (which needs `etcd`), and the server measured would be a 7.3 MB binary
# with the etcd client, not the 4.9 MB one a user's `cargo build --release` makes.
cargo build --release -p wsreg-bench --bin wsreg-bench
cargo build --release -p wsreg --bin wsreg
(cd "$here" && npm ci --no-audit --no-fund --workspaces=false --ignore-scripts >/dev/null)
table="$(mktemp)"
trap 'rm -f "$table"' EXIT
node "$here/bench.js" "$@" >"$table"
cat "$table"
bench/section.sh yjs <"$table"
