#!/usr/bin/env bash
# NetworkPolicy benchmark (bench/netpol.py does the work; see its docstring or --help):
#   1. pod-to-pod iperf3 throughput and new connections/s (wrk against nginx) with no policy, 1 policy and
#      1,000 policies over 500 pods, interleaved runs, medians with their spread and ratios to no policy;
#   2. the agent's CPU to recompile after one pod's label change, beside a full rebuild;
#   3. the kernel's CPU per new-connection packet through the policy table of part 1 (no cluster);
#   4. time from `kubectl apply` of a policy to enforcement on all nodes of a 3-node cluster (probe loop).
#
#   bench/netpol.sh [--duration 5] [--runs 3] [--conns 16] [--settle 20] [--quiet 0.05] [--latency-rounds 5]
#                   [--path-packets 200000] [--path-rounds 9] [--parts datapath,recompile,pathcost,latency]
#
# Needs root, nft, iperf3, wrk, nginx, kubectl. Every process it starts is stopped by PID; the clusters, their
# links, network namespaces and nftables tables are removed on exit, also on failure or Ctrl-C.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PY="${BENCH_PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
case "${1:-}" in -h|--help) sed -n '2,13p' "$0"; exec "$PY" "$HERE/netpol.py" --help ;; esac
for b in nft iperf3 wrk nginx kubectl ip; do
  command -v "$b" >/dev/null 2>&1 || { echo "netpol.sh: missing binary: $b" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "netpol.sh: needs root (pod networking, nftables)" >&2; exit 1; }

DRIVER_PID=""
on_exit() {
  # the driver removes its clusters in its own finally blocks; SIGTERM lets it run them
  if [ -n "$DRIVER_PID" ] && kill -0 "$DRIVER_PID" 2>/dev/null; then
    kill -TERM "$DRIVER_PID" 2>/dev/null
    wait "$DRIVER_PID" 2>/dev/null
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM
cd "$ROOT" || exit 1
"$PY" "$HERE/netpol.py" "$@" &
DRIVER_PID=$!
wait "$DRIVER_PID"
rc=$?
DRIVER_PID=""
exit $rc
