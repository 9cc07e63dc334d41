#!/usr/bin/env bash
# Cluster DNS: pyk3s vs knot on the same 1,000-service data set, same run, loopback only.
# Three query sets (dnsperf, UDP):
#   cluster  A + SRV for existing services      (pyk3s: fast path; knot: authoritative zone)
#   forward  names of a zone served by a local knot "upstream" (pyk3s: forward + cache -> knot;
#            knot: answers them itself)
#   nx       search-path misses svc-N.ns-M.svc.cluster.local.svc.cluster.local (NXDOMAIN)
# For each: max QPS (dnsperf -c 4 -q 100 -l DURATION) and p50/p99 at a fixed rate (-Q RATE -v).
# Prints per-set QPS ratio pyk3s/knot. Servers are stopped by PID. Data set from
# /work/shared/peers/dns/gen_zone.py (called in place).
#   bench/dns.sh [--duration 10] [--rate 10000] [--services 1000] [--port 15353] [--pin]
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
PEERS="${PEERS:-/work/shared/peers}"
. "$PEERS/lib/common.sh"
PY="${BENCH_PYTHON:-python3}"
PORT=15353; UPORT=15354; DURATION=10; RATE=10000; RATE_DURATION=5; SERVICES=1000; CLIENTS=4; OUTSTANDING=100
PIN=0; OUTDIR="$PWD/bench-results/pyk3s-dns"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;; --rate) RATE=$2; shift 2 ;; --services) SERVICES=$2; shift 2 ;;
    --port) PORT=$2; UPORT=$(( $2 + 1 )); shift 2 ;; --pin) PIN=1; shift ;; --out) OUTDIR=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;; *) die "unknown option $1" ;;
  esac
done
need dnsperf knotd
TS_LOAD=(); TS_SRV=()
if [ "$PIN" = 1 ]; then TS_LOAD=(taskset -c 0); TS_SRV=(taskset -c 1); fi
require_free "$PORT" "$UPORT"
bench_tmp
mkdir -p "$OUTDIR"
Z="$BENCH_TMP/zone"
"$SYSPY" "$PEERS/dns/gen_zone.py" "$Z" --services "$SERVICES" --queries 20000 --nx 0 --srv 0.2 >/dev/null
cp "$Z/queries.txt" "$BENCH_TMP/q-cluster.txt"
awk -v n="$SERVICES" 'BEGIN{srand(2); for(i=0;i<20000;i++){k=int(rand()*n); printf "svc-%d.ns-%d.svc.cluster.local.svc.cluster.local A\n", k, k%20}}' >"$BENCH_TMP/q-nx.txt"
{
  echo '$ORIGIN example.test.'; echo '$TTL 300'
  echo '@ IN SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 300'
  echo '@ IN NS ns.example.test.'; echo 'ns IN A 10.99.0.53'
  for i in $(seq 0 199); do echo "host-$i IN A 10.99.$((i / 250)).$((i % 250 + 1))"; done
} >"$BENCH_TMP/example.test.zone"
awk 'BEGIN{srand(3); for(i=0;i<20000;i++) printf "host-%d.example.test A\n", int(rand()*200)}' >"$BENCH_TMP/q-forward.txt"

knot_conf() { # $1 port, $2 dir, zones...
  local port=$1 dir=$2; shift 2
  mkdir -p "$dir"
  { cat <<KNOTCONF
server:
    rundir: "$dir"
    listen: 127.0.0.1@$port
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$dir/db"
control:
    listen: "$dir/knot.sock"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$dir"
    semantic-checks: off
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
zone:
KNOTCONF
  for z in "$@"; do printf '  - domain: %s\n    file: "%s.zone"\n' "$z" "$z"; done; } >"$dir/knot.conf"
}
cp "$Z/cluster.local.zone" "$BENCH_TMP/cluster.local.zone"

# the upstream (used by pyk3s's forward) is knot serving example.test on UPORT
knot_conf "$UPORT" "$BENCH_TMP/up" example.test
cp "$BENCH_TMP/example.test.zone" "$BENCH_TMP/up/"
start_bg "$BENCH_TMP/up.log" "${TS_SRV[@]}" knotd -c "$BENCH_TMP/up/knot.conf"; UP_PID=$LAST_PID
wait_port "$UPORT" udp 20 "$UP_PID" "$BENCH_TMP/up.log"

run_set() { # scenario set
  local s=$1 set=$2 f
  "${TS_LOAD[@]}" dnsperf -s 127.0.0.1 -p "$PORT" -d "$BENCH_TMP/q-$set.txt" -c "$CLIENTS" -q "$OUTSTANDING" -l 2 >/dev/null 2>&1
  f="$OUTDIR/$s-$set-max.txt"
  "${TS_LOAD[@]}" dnsperf -s 127.0.0.1 -p "$PORT" -d "$BENCH_TMP/q-$set.txt" -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION" >"$f" 2>&1
  read -r qps avg sd lost < <("$SYSPY" "$PEERS/lib/parse.py" dnsperf "$f")
  f="$OUTDIR/$s-$set-rate.txt"
  "${TS_LOAD[@]}" dnsperf -s 127.0.0.1 -p "$PORT" -d "$BENCH_TMP/q-$set.txt" -c "$CLIENTS" -Q "$RATE" -l "$RATE_DURATION" -v >"$f" 2>&1
  read -r p50 p99 n < <("$SYSPY" "$PEERS/lib/parse.py" dnsperf-v "$f")
  grep -v '^> ' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
  echo "$s $set $qps $lost $p50 $p99" >>"$OUTDIR/results.txt"
  log "$s $set: qps=$qps lost=${lost}% p50=${p50}ms p99=${p99}ms @${RATE}qps"
}

: >"$OUTDIR/results.txt"
# knot: cluster.local and example.test itself
knot_conf "$PORT" "$BENCH_TMP/knot" cluster.local example.test
cp "$BENCH_TMP/cluster.local.zone" "$BENCH_TMP/example.test.zone" "$BENCH_TMP/knot/"
start_bg "$BENCH_TMP/knot.log" "${TS_SRV[@]}" knotd -c "$BENCH_TMP/knot/knot.conf"; PID=$LAST_PID
wait_port "$PORT" udp 20 "$PID" "$BENCH_TMP/knot.log"; sleep 0.5
for set in cluster forward nx; do run_set knot "$set"; done
stop_pid "$PID"; sleep 0.5

start_bg "$BENCH_TMP/pyk3s.log" "${TS_SRV[@]}" "$PY" "$HERE/dns_serve.py" --port "$PORT" --services "$SERVICES" --upstream "127.0.0.1:$UPORT"
PID=$LAST_PID
wait_port "$PORT" udp 30 "$PID" "$BENCH_TMP/pyk3s.log"
for _ in $(seq 1 100); do grep -q '^ready' "$BENCH_TMP/pyk3s.log" && break; sleep 0.1; done
for set in cluster forward nx; do run_set pyk3s "$set"; done
stop_pid "$PID"
stop_pid "$UP_PID"

echo
printf '%-8s %12s %12s %8s %14s %14s %14s %14s\n' set knot_qps pyk3s_qps ratio knot_p50_ms pyk3s_p50_ms knot_p99_ms pyk3s_p99_ms
for set in cluster forward nx; do
  read -r _ _ kq _ kp50 kp99 < <(grep "^knot $set " "$OUTDIR/results.txt")
  read -r _ _ pq _ pp50 pp99 < <(grep "^pyk3s $set " "$OUTDIR/results.txt")
  ratio=$(awk -v a="$pq" -v b="$kq" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "nan"}')
  printf '%-8s %12s %12s %7sx %14s %14s %14s %14s\n' "$set" "$kq" "$pq" "$ratio" "$kp50" "$pp50" "$kp99" "$pp99"
done | tee "$OUTDIR/summary.txt"
