#!/usr/bin/env bash
# What the listening-socket rule of liveness costs (issue 12, item 1), for both readers,
# and the `ownership` section of docs/benchmarks.md:
#   - the Rust readers: `wsreg-bench ownership` (N entries of N real processes, judged in
#     fresh processes: process check only, the whole rule cold and warm, `wsreg list`);
#   - the Vite plugin: packages/vite-plugin-wsreg/bench/ownership-cost.js (1,000 entries).
#   bench/ownership/run.sh [--no-section]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p wsreg -p wsreg-bench >&2
rust="$(target/release/wsreg-bench ownership)"
mixed="$(target/release/wsreg-bench ownership --servers 1000 --layouts 8 |
  sed -n 's/^| 1000 |/| 1000, 8 kinds interleaved |/p')"
plugin="$(node packages/vite-plugin-wsreg/bench/ownership-cost.js 1000 30)"
section="$(cat <<MD
## Ownership: what "live only while it listens on its port" costs

A local entry is shown only while its process holds a LISTEN socket on its port
(docs/registry-format.md, "Liveness"). Rerun: \`bench/ownership/run.sh\`
($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end of the run).

**Rust readers** (\`wsreg list\`, \`wsreg serve\`'s rechecks): N entries, each of its own
process (20 descriptors, then its listener, then 3 more), judged in fresh processes,
medians of 5. *Before* is the process check alone (the rule before this one), measured
in the same run; *cold* is the first check of a process (LISTEN sockets from sock_diag,
each process's descriptors read newest first until the listener), as every \`wsreg list\`
pays; *warm* is the same with the socket inodes known (no descriptor read); *\`serve\`'s
recheck* is what \`wsreg serve\` pays to check every entry's socket again on a read or a
health round (its pidfds already watch the processes: no \`/proc/<pid>/stat\` read).
Cold: a fresh process knows no inode, but a judge first tries the descriptor numbers at
which it found the last listeners of the entry's kind (servers of one kind keep theirs at
the same number, as these holders do): one \`readlink\` per entry instead of listing its
descriptors. The last row, 1,000 entries, has 8 kinds of server interleaved (holder i
opens 20 + i % 8 descriptors first and registers as kind \`bench<i % 8>\`:
\`wsreg-bench ownership --layouts 8\`); with one list of guesses for all kinds, as before,
no guess hit and that row took 60 ms cold. The case guesses cannot help is servers of one
kind laid out differently: after 8 misses in a row a kind is listed, as without guesses.

$rust
$mixed

**Vite plugin** (\`/proc/net/tcp\`: Node has no netlink; its cost grows with every socket
of the host, not with the entries):

\`\`\`
$plugin
\`\`\`
MD
)"
printf '%s\n' "$section"
if [ "${1:-}" != "--no-section" ]; then
  bench/section.sh ownership <<<"$section"
fi
