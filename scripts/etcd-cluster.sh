#!/usr/bin/env bash
# A three-member etcd cluster on loopback ports, for the etcd backend's tests and
# benchmarks (Debian's etcd-server package: `apt-get install -y etcd-server`).
#
#   scripts/etcd-cluster.sh start DIR [BASE_PORT]   members m1..m3; client ports BASE..BASE+2,
#                                                   peer ports BASE+3..BASE+5 (default 23790);
#                                                   prints the --backend URL, also in DIR/backend
#   scripts/etcd-cluster.sh stop DIR                SIGKILLs the members by their PID files
#   scripts/etcd-cluster.sh kill-member DIR N       SIGKILLs member N (a failed member)
#   scripts/etcd-cluster.sh restart-member DIR N [BASE_PORT]
#                                                   starts member N again on its data; it rejoins
#
# Each member's data, log and PID file are in DIR/mN/. `start` returns once every member
# answers its health check (or fails after 20 s, showing the logs). Loopback only.
set -euo pipefail
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: etcd-cluster.sh start|stop|kill-member|restart-member DIR [N] [BASE_PORT]" >&2; exit 2; }
base=${3:-23790}

usage() { echo "usage: etcd-cluster.sh start|stop|kill-member|restart-member DIR [N] [BASE_PORT]" >&2; exit 2; }

kill_member() {
  local pidfile=$dir/m$1/pid
  [ -e "$pidfile" ] || return 0
  kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile"
}

stop() {
  for i in 1 2 3; do kill_member "$i"; done
}

# Starts member $1 (on its data directory, if it has one: then it rejoins).
start_member() {
  local i=$1 cluster="" j
  for j in 1 2 3; do
    cluster+="${cluster:+,}m$j=http://127.0.0.1:$((base + 2 + j))"
  done
  local client=$((base + i - 1)) peer=$((base + 2 + i))
  mkdir -p "$dir/m$i"
  etcd --name "m$i" --data-dir "$dir/m$i/data" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "wsreg-$base" \
    >>"$dir/m$i/log" 2>&1 &
  echo $! >"$dir/m$i/pid"
}

# Waits until members $@ answer their health check (20 s at most).
wait_healthy() {
  local healthy i
  for _ in $(seq 200); do
    healthy=0
    for i in "$@"; do
      curl -fsS "http://127.0.0.1:$((base + i - 1))/health" 2>/dev/null | grep -q '"health":"true"' && healthy=$((healthy + 1))
    done
    [ "$healthy" = $# ] && return 0
    sleep 0.1
  done
  tail -n 20 "$dir"/m*/log >&2
  echo "etcd-cluster.sh: member(s) $* not healthy in 20 s" >&2
  return 1
}

case "$cmd" in
start)
  command -v etcd >/dev/null || { echo "etcd-cluster.sh: etcd is missing; install it with: sudo apt-get install -y etcd-server" >&2; exit 1; }
  mkdir -p "$dir"
  for i in 1 2 3; do start_member "$i"; done
  wait_healthy 1 2 3 || { stop; exit 1; }
  echo "etcd://127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))" | tee "$dir/backend"
  ;;
stop) stop ;;
kill-member) kill_member "${3:?member number}" ;;
restart-member)
  n=${3:?member number}
  base=${4:-23790}
  start_member "$n"
  wait_healthy "$n"
  ;;
*) usage ;;
esac
