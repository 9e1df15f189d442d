#!/usr/bin/env bash
# A three-member etcd cluster on loopback ports, for the etcd backend's tests and
# benchmarks (Debian's etcd-server package: `apt-get install -y etcd-server`).
#
#   scripts/etcd-cluster.sh start DIR [BASE_PORT]   members m1..m3; client ports BASE..BASE+2,
#                                                   peer ports BASE+3..BASE+5 (default 23790);
#                                                   prints the --backend URL, also in DIR/backend
#   scripts/etcd-cluster.sh stop DIR                SIGKILLs the members by their PID files
#
# Each member's data, log and PID file are in DIR/mN/. `start` returns once every member
# answers its health check (or fails after 20 s, showing the logs). Loopback only.
set -euo pipefail
cmd=${1:?usage: etcd-cluster.sh start|stop DIR [BASE_PORT]}
dir=${2:?usage: etcd-cluster.sh start|stop DIR [BASE_PORT]}
base=${3:-23790}

stop() {
  for pidfile in "$dir"/m*/pid; do
    [ -e "$pidfile" ] || continue
    kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

case "$cmd" in
start)
  command -v etcd >/dev/null || { echo "etcd-cluster.sh: etcd is missing; install it with: sudo apt-get install -y etcd-server" >&2; exit 1; }
  mkdir -p "$dir"
  cluster=""
  for i in 1 2 3; do
    cluster+="${cluster:+,}m$i=http://127.0.0.1:$((base + 2 + i))"
  done
  endpoints=""
  for i in 1 2 3; do
    client=$((base + i - 1))
    peer=$((base + 2 + i))
    mkdir -p "$dir/m$i"
    etcd --name "m$i" --data-dir "$dir/m$i/data" \
      --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "wsreg-$base" \
      >"$dir/m$i/log" 2>&1 &
    echo $! >"$dir/m$i/pid"
    endpoints+="${endpoints:+,}127.0.0.1:$client"
  done
  for _ in $(seq 200); do
    healthy=0
    for i in 1 2 3; do
      curl -fsS "http://127.0.0.1:$((base + i - 1))/health" 2>/dev/null | grep -q '"health":"true"' && healthy=$((healthy + 1))
    done
    if [ "$healthy" = 3 ]; then
      echo "etcd://$endpoints" | tee "$dir/backend"
      exit 0
    fi
    sleep 0.1
  done
  tail -n 20 "$dir"/m*/log >&2
  stop
  echo "etcd-cluster.sh: the cluster did not become healthy in 20 s" >&2
  exit 1
  ;;
stop) stop ;;
*) echo "usage: etcd-cluster.sh start|stop DIR [BASE_PORT]" >&2; exit 2 ;;
esac
