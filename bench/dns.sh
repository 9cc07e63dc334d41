#!/usr/bin/env bash
# Cluster DNS: pyk3s vs knot on the same 1,000-service data set, same run, loopback only.
# Three query sets (dnsperf, UDP):
#   cluster  A + SRV for existing services      (pyk3s: fast path; knot: authoritative zone)
#   forward  names of a zone served by a local knot "upstream" (pyk3s: forward + cache -> knot;
#            knot: answers them itself)
#   nx       search-path misses svc-N.ns-M.svc.cluster.local.svc.cluster.local (NXDOMAIN)
# For each: max QPS (dnsperf -c 4 -q 100 -l DURATION), ROUNDS times, knot and pyk3s alternating (both
# servers stay up, so background load hits both alike), with the server's CPU time per query; then
# p50/p99 at a fixed rate (-Q RATE -v). Prints medians and the pyk3s/knot ratios. pyk3s runs
# bench/dns_serve.py with --workers (default auto = CPUs it may use, as the packaged Deployment's
# PYK3S_DNS_WORKERS=auto; 1 under --pin). knot has 2 UDP workers. Servers are stopped by PID. Data set
# from /work/shared/peers/dns/gen_zone.py (called in place). Memory: resident set (RSS, all processes of
# each server) once loaded and after the run, plus pyk3s's own before/after-data-set figure per worker.
#   bench/dns.sh [--duration 5] [--rounds 3] [--rate 10000] [--services 1000] [--port 15353] [--pin]
#                [--workers auto|N] [--sets cluster,forward,nx]
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
PEERS="${PEERS:-/work/shared/peers}"
. "$PEERS/lib/common.sh"
PY="${BENCH_PYTHON:-python3}"
PORT=15353; UPORT=15354; PPORT=15355; DURATION=5; ROUNDS=3; WORKERS=auto; RATE=10000; RATE_DURATION=5; SERVICES=1000; CLIENTS=4; OUTSTANDING=100
PIN=0; OUTDIR="$PWD/bench-results/pyk3s-dns"; SETS="cluster,forward,nx"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;; --rate) RATE=$2; shift 2 ;; --services) SERVICES=$2; shift 2 ;;
    --port) PORT=$2; UPORT=$(( $2 + 1 )); PPORT=$(( $2 + 2 )); shift 2 ;; --pin) PIN=1; shift ;;
    --out) OUTDIR=$2; shift 2 ;; --rounds) ROUNDS=$2; shift 2 ;; --workers) WORKERS=$2; shift 2 ;;
    --sets) SETS=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;; *) die "unknown option $1" ;;
  esac
done
need dnsperf knotd
TS_LOAD=(); TS_SRV=()
if [ "$PIN" = 1 ]; then TS_LOAD=(taskset -c 0); TS_SRV=(taskset -c 1); fi
require_free "$PORT" "$UPORT" "$PPORT"
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

CPU="$SYSPY $PEERS/lib/proctree_cpu.py"
# resident memory in MiB of a server: the PID and all its descendants (workers)
rss_mib() {
  local kib=0 p v
  for p in $($CPU --pids "$1"); do
    v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null); kib=$(( kib + ${v:-0} ))
  done
  awk -v k="$kib" 'BEGIN{printf "%.1f", k/1024}'
}
# one max-QPS run of dnsperf against server $1 (name) on port $2 with pid $3; appends to results
max_run() { # name port pid set round
  local s=$1 port=$2 pid=$3 set=$4 r=$5 f c0 c1 qps avg sd lost
  f="$OUTDIR/$s-$set-max-$r.txt"
  c0=$($CPU "$pid")
  "${TS_LOAD[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$BENCH_TMP/q-$set.txt" -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION" >"$f" 2>&1
  c1=$($CPU "$pid")
  read -r qps avg sd lost < <("$SYSPY" "$PEERS/lib/parse.py" dnsperf "$f")
  # server CPU microseconds per answered query: stays meaningful when other work shares the cores
  local us; us=$(awk -v a="$c0" -v b="$c1" -v q="$qps" -v d="$DURATION" 'BEGIN{ if (q>0) printf "%.2f", (b-a)*1e6/(q*d); else print "nan"}')
  echo "$s $set max $r $qps $lost $us" >>"$OUTDIR/results.txt"
  log "$s $set round $r: qps=$qps lost=${lost}% cpu=${us}us/query"
}
rate_run() { # name port set
  local s=$1 port=$2 set=$3 f p50 p99 n
  f="$OUTDIR/$s-$set-rate.txt"
  "${TS_LOAD[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$BENCH_TMP/q-$set.txt" -c "$CLIENTS" -Q "$RATE" -l "$RATE_DURATION" -v >"$f" 2>&1
  read -r p50 p99 n < <("$SYSPY" "$PEERS/lib/parse.py" dnsperf-v "$f")
  grep -v '^> ' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
  echo "$s $set rate 0 $p50 $p99" >>"$OUTDIR/results.txt"
  log "$s $set: p50=${p50}ms p99=${p99}ms @${RATE}qps"
}

: >"$OUTDIR/results.txt"
# knot (cluster.local and example.test itself) on PORT, pyk3s on PPORT, both up for the whole run so
# their measurements can alternate: a change in background load then hits both alike
knot_conf "$PORT" "$BENCH_TMP/knot" cluster.local example.test
cp "$BENCH_TMP/cluster.local.zone" "$BENCH_TMP/example.test.zone" "$BENCH_TMP/knot/"
start_bg "$BENCH_TMP/knot.log" "${TS_SRV[@]}" knotd -c "$BENCH_TMP/knot/knot.conf"; KPID=$LAST_PID
wait_port "$PORT" udp 20 "$KPID" "$BENCH_TMP/knot.log"
start_bg "$BENCH_TMP/pyk3s.log" "${TS_SRV[@]}" "$PY" "$HERE/dns_serve.py" --port "$PPORT" --services "$SERVICES" \
  --upstream "127.0.0.1:$UPORT" --workers "$WORKERS"
PPID_=$LAST_PID
wait_port "$PPORT" udp 30 "$PPID_" "$BENCH_TMP/pyk3s.log"
# every worker indexes the data set and precomputes its answers first (10,000 Services: tens of seconds)
for _ in $(seq 1 3000); do grep -q '^ready' "$BENCH_TMP/pyk3s.log" && break; sleep 0.1; done
grep -q '^ready' "$BENCH_TMP/pyk3s.log" || die "pyk3s not ready after 300 s"
log "$(grep '^ready' "$BENCH_TMP/pyk3s.log")"
grep '^memory' "$BENCH_TMP/pyk3s.log" | while read -r l; do log "$l"; done
KRSS0=$(rss_mib "$KPID"); PRSS0=$(rss_mib "$PPID_")
IFS=',' read -r -a SETL <<<"$SETS"
for set in "${SETL[@]}"; do
  for port in "$PORT" "$PPORT"; do   # warm-up (fills pyk3s's cache for the forward set)
    "${TS_LOAD[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$BENCH_TMP/q-$set.txt" -c "$CLIENTS" -q "$OUTSTANDING" -l 2 >/dev/null 2>&1
  done
  for r in $(seq 1 "$ROUNDS"); do
    max_run knot "$PORT" "$KPID" "$set" "$r"
    max_run pyk3s "$PPORT" "$PPID_" "$set" "$r"
  done
  rate_run knot "$PORT" "$set"
  rate_run pyk3s "$PPORT" "$set"
done
KRSS1=$(rss_mib "$KPID"); PRSS1=$(rss_mib "$PPID_")
stop_pid "$PPID_"
stop_pid "$KPID"
stop_pid "$UP_PID"

median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.2f", (a[NR/2]+a[NR/2+1])/2}'; }
echo
echo "pyk3s workers: $(grep -o 'with [0-9]* worker(s)' "$BENCH_TMP/pyk3s.log" | head -1); pin=$PIN; rounds=$ROUNDS x ${DURATION}s (medians)"
printf '%-8s %10s %10s %7s %9s %9s %7s %9s %9s %9s %9s\n' set knot_qps pyk3s_qps ratio knot_us pyk3s_us cpu_x \
  knot_p50 pyk3s_p50 knot_p99 pyk3s_p99
for set in "${SETL[@]}"; do
  kq=$(awk -v s="$set" '$1=="knot" && $2==s && $3=="max"{print $5}' "$OUTDIR/results.txt" | median)
  pq=$(awk -v s="$set" '$1=="pyk3s" && $2==s && $3=="max"{print $5}' "$OUTDIR/results.txt" | median)
  ku=$(awk -v s="$set" '$1=="knot" && $2==s && $3=="max"{print $7}' "$OUTDIR/results.txt" | median)
  pu=$(awk -v s="$set" '$1=="pyk3s" && $2==s && $3=="max"{print $7}' "$OUTDIR/results.txt" | median)
  read -r _ _ _ _ kp50 kp99 < <(grep "^knot $set rate " "$OUTDIR/results.txt")
  read -r _ _ _ _ pp50 pp99 < <(grep "^pyk3s $set rate " "$OUTDIR/results.txt")
  ratio=$(awk -v a="$pq" -v b="$kq" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "nan"}')
  cpux=$(awk -v a="$pu" -v b="$ku" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "nan"}')
  printf '%-8s %10.0f %10.0f %6sx %9s %9s %6sx %9s %9s %9s %9s\n' "$set" "$kq" "$pq" "$ratio" "$ku" "$pu" "$cpux" \
    "$kp50" "$pp50" "$kp99" "$pp99"
done | tee "$OUTDIR/summary.txt"
printf 'memory (RSS MiB, %s services, all processes): knot %s loaded, %s after the run; pyk3s %s loaded, %s after the run\n' \
  "$SERVICES" "$KRSS0" "$KRSS1" "$PRSS0" "$PRSS1" | tee -a "$OUTDIR/summary.txt"
grep '^memory worker' "$BENCH_TMP/pyk3s.log" | tee -a "$OUTDIR/summary.txt"
echo "ratio = pyk3s/knot max QPS; *_us = server CPU microseconds per query at max load; cpu_x = pyk3s/knot CPU per query; p50/p99 in ms at ${RATE} qps"
