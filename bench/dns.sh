#!/usr/bin/env bash
# Cluster DNS: `pyk3s coredns` with the packaged Corefile (every plugin: errors, health, ready,
# kubernetes, hosts, prometheus, cache, loop, reload, loadbalance, import, forward) against the peers,
# same data set, same run, same number of workers, loopback only.
#
# The 1,000 Services of ../shared/peers/dns/gen_zone.py are created in a real `pyk3s server` (API only),
# which `pyk3s coredns --kubeconfig` watches, exactly as in a cluster. Query sets (dnsperf, UDP):
#   cluster   A + SRV of existing Services          peer: knot, authoritative for the zone
#   nx        search-path misses (NXDOMAIN)          peer: knot
#   fwd-hit   200 names of example.test, asked again and again (cache hits after warm-up)
#   fwd-miss  a name never asked before on every query (cache misses: each one goes upstream)
#             peer for both fwd sets: unbound forwarding with its cache (forward-zone), both servers
#             forwarding to the same upstream, a local knot serving example.test (with a wildcard)
# Every server is checked for correct answers (A, SRV, NXDOMAIN, a forwarded name, a fresh forwarded
# name) before it is loaded. Per set: max QPS (dnsperf -c 4 -q 100 -l DURATION), ROUNDS times, peer and
# pyk3s interleaved, with each server's CPU time per query; then p50/p99 at a fixed rate (-Q RATE -v).
# Prints medians, the spread (± half the range, % of the median) and the pyk3s/peer ratios.
# Workers: --workers N for every server (knot udp-workers, unbound num-threads, PYK3S_DNS_WORKERS);
# default 1 under --pin (server alone on CPU 1, load and upstream on CPU 0), else 2.
# --baseline SRC also runs `pyk3s coredns` from the source tree SRC (e.g. `git archive main | tar -x -C
# SRC`), same Corefile, same API server, interleaved with the others in every round: before/after
# figures from one sitting (reported as "pyk3s-base").
#   bench/dns.sh [--duration 5] [--rounds 3] [--rate 10000] [--services 1000] [--port 15353] [--pin]
#                [--workers N] [--sets cluster,nx,fwd-hit,fwd-miss] [--out DIR] [--baseline SRC]
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=bench/peers.sh
. "$HERE/peers.sh"
PY="${BENCH_PYTHON:-$ROOT/.venv/bin/python}"
PORT=15353; DURATION=5; ROUNDS=3; WORKERS=""; RATE=10000; RATE_DURATION=5; SERVICES=1000; CLIENTS=4; OUTSTANDING=100
PIN=0; OUTDIR="$PWD/bench-results/pyk3s-dns"; SETS="cluster,nx,fwd-hit,fwd-miss"; BASELINE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;; --rate) RATE=$2; shift 2 ;; --services) SERVICES=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;; --pin) PIN=1; shift ;;
    --out) OUTDIR=$2; shift 2 ;; --rounds) ROUNDS=$2; shift 2 ;; --workers) WORKERS=$2; shift 2 ;;
    --sets) SETS=$2; shift 2 ;; --rate-duration) RATE_DURATION=$2; shift 2 ;;
    --baseline) BASELINE=$(cd "$2" && pwd) || die "no directory $2"; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;; *) die "unknown option $1" ;;
  esac
done
need dnsperf knotd unbound kubectl
[ -n "$WORKERS" ] || { WORKERS=2; [ "$PIN" = 1 ] && WORKERS=1; }
# ports: knot PORT, upstream +1, pyk3s +2, unbound +3, pyk3s health/ready/metrics +4..+6, API +7,
# the baseline's DNS and health/ready/metrics +8..+11
UPORT=$((PORT + 1)); PPORT=$((PORT + 2)); BPORT=$((PORT + 3)); APORT=$((PORT + 7)); XPORT=$((PORT + 8))
TS_LOAD=(); TS_SRV=()
if [ "$PIN" = 1 ]; then TS_LOAD=(taskset -c 0); TS_SRV=(taskset -c 1); fi
require_free "$PORT" "$UPORT" "$PPORT" "$BPORT" $((PORT + 4)) $((PORT + 5)) $((PORT + 6)) "$APORT"
if [ -n "$BASELINE" ]; then
  require_free "$XPORT" $((PORT + 9)) $((PORT + 10)) $((PORT + 11))
  [ -f "$BASELINE/pyk3s/__init__.py" ] || die "--baseline $BASELINE: no pyk3s package there"
  got=$(cd "$BASELINE" && PYTHONPATH="$BASELINE" "$PY" -c 'import pyk3s, os; print(os.path.dirname(os.path.dirname(pyk3s.__file__)))')
  [ "$got" = "$BASELINE" ] || die "--baseline: python imports pyk3s from $got, not $BASELINE"
fi
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
  echo '* IN A 10.99.1.1'
} >"$BENCH_TMP/example.test.zone"
awk 'BEGIN{srand(3); for(i=0;i<20000;i++) printf "host-%d.example.test A\n", int(rand()*200)}' >"$BENCH_TMP/q-fwd-hit.txt"
# fwd-miss: a file of names never asked before for every run (more names than a run can send)
MISS_LINES=$((60000 * (DURATION > RATE_DURATION ? DURATION : RATE_DURATION)))
miss_file() { # tag -> path
  awk -v t="$1" -v n="$MISS_LINES" 'BEGIN{for(i=0;i<n;i++) printf "m%d-%s.example.test A\n", i, t}' >"$BENCH_TMP/q-miss-$1.txt"
  echo "$BENCH_TMP/q-miss-$1.txt"
}

knot_conf() { # $1 port, $2 dir, zones...
  local port=$1 dir=$2; shift 2
  mkdir -p "$dir"
  { cat <<KNOTCONF
server:
    rundir: "$dir"
    listen: 127.0.0.1@$port
    udp-workers: $WORKERS
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

# the upstream both forwarders use: knot serving example.test on UPORT, beside the load generator
knot_conf "$UPORT" "$BENCH_TMP/up" example.test
cp "$BENCH_TMP/example.test.zone" "$BENCH_TMP/up/"
start_bg "$BENCH_TMP/up.log" "${TS_LOAD[@]}" knotd -c "$BENCH_TMP/up/knot.conf"; UP_PID=$LAST_PID
wait_port "$UPORT" udp 20 "$UP_PID" "$BENCH_TMP/up.log"

# knot, authoritative for cluster.local (the peer for cluster and nx)
knot_conf "$PORT" "$BENCH_TMP/knot" cluster.local
cp "$Z/cluster.local.zone" "$BENCH_TMP/knot/"
start_bg "$BENCH_TMP/knot.log" "${TS_SRV[@]}" knotd -c "$BENCH_TMP/knot/knot.conf"; KPID=$LAST_PID
wait_port "$PORT" udp 20 "$KPID" "$BENCH_TMP/knot.log"

# unbound forwarding everything to the upstream, with its cache (the peer for fwd-hit and fwd-miss)
mkdir -p "$BENCH_TMP/unbound"
cat >"$BENCH_TMP/unbound/unbound.conf" <<UNBOUND
server:
    interface: 127.0.0.1@$BPORT
    port: $BPORT
    num-threads: $WORKERS
    so-reuseport: yes
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$BENCH_TMP/unbound"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
    msg-cache-size: 64m
    rrset-cache-size: 128m
    num-queries-per-thread: 4096
    outgoing-range: 8192
    do-ip6: no
    cache-max-ttl: 30
    qname-minimisation: no
    local-zone: "test." nodefault
    minimal-responses: yes
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$UPORT
    forward-first: no
UNBOUND
start_bg "$BENCH_TMP/unbound.log" "${TS_SRV[@]}" unbound -d -c "$BENCH_TMP/unbound/unbound.conf"; BPID=$LAST_PID
wait_port "$BPORT" udp 20 "$BPID" "$BENCH_TMP/unbound.log"

# pyk3s: an API server holding the Services, and `pyk3s coredns` with the packaged Corefile watching it
"$PY" "$HERE/dns_setup.py" "$BENCH_TMP/pyk3s" --port "$PPORT" --health $((PORT + 4)) --ready $((PORT + 5)) \
  --metrics $((PORT + 6)) --upstream "127.0.0.1:$UPORT" --services "$SERVICES" || die "dns_setup.py failed"
KC="$BENCH_TMP/pyk3s/kubeconfig.yaml"
: >"$BENCH_TMP/pyk3s/config.yaml"
start_bg "$BENCH_TMP/api.log" "${TS_LOAD[@]}" "$PY" -m pyk3s server --disable-agent --disable coredns,traefik,servicelb \
  --data-dir "$BENCH_TMP/pyk3s/data" --https-listen-port "$APORT" --bind-address 127.0.0.1 \
  --write-kubeconfig "$KC" --config "$BENCH_TMP/pyk3s/config.yaml" --service-cidr 10.96.0.0/16 \
  --cluster-dns 10.96.0.10 --node-name pk-bench-dns
API_PID=$LAST_PID
for _ in $(seq 1 300); do
  [ -f "$KC" ] && kubectl --kubeconfig "$KC" get --raw /readyz >/dev/null 2>&1 && break
  kill -0 "$API_PID" 2>/dev/null || { tail -20 "$BENCH_TMP/api.log" >&2; die "pyk3s server exited"; }
  sleep 0.2
done
kubectl --kubeconfig "$KC" create -f "$BENCH_TMP/pyk3s/services.yaml" >/dev/null || die "creating the Services failed"
log "$SERVICES Services in the API server"
start_bg "$BENCH_TMP/pyk3s.log" "${TS_SRV[@]}" env PYK3S_DNS_WORKERS="$WORKERS" "$PY" -m pyk3s coredns \
  -conf "$BENCH_TMP/pyk3s/Corefile" --kubeconfig "$KC"
PPID_=$LAST_PID
wait_ready() { # pid dns-port ready-port log
  wait_port "$2" udp 30 "$1" "$4"
  for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$3/ready")" = 200 ] && return 0
    kill -0 "$1" 2>/dev/null || { tail -20 "$4" >&2; die "pyk3s coredns exited"; }
    sleep 0.1
  done
  die "pyk3s coredns on port $2 not ready"
}
wait_ready "$PPID_" "$PPORT" $((PORT + 5)) "$BENCH_TMP/pyk3s.log"
XPID=""
if [ -n "$BASELINE" ]; then
  # the same packaged Corefile (this tree's dns_setup.py) on the baseline's ports, the same Services
  "$PY" "$HERE/dns_setup.py" "$BENCH_TMP/base" --port "$XPORT" --health $((PORT + 9)) --ready $((PORT + 10)) \
    --metrics $((PORT + 11)) --upstream "127.0.0.1:$UPORT" --services "$SERVICES" || die "dns_setup.py failed"
  # run from SRC: `python -m` puts the working directory first on the path
  start_bg "$BENCH_TMP/base.log" "${TS_SRV[@]}" env -C "$BASELINE" PYTHONPATH="$BASELINE" \
    PYK3S_DNS_WORKERS="$WORKERS" "$PY" -m pyk3s coredns -conf "$BENCH_TMP/base/Corefile" --kubeconfig "$KC"
  XPID=$LAST_PID
  wait_ready "$XPID" "$XPORT" $((PORT + 10)) "$BENCH_TMP/base.log"
  log "baseline: pyk3s coredns from $BASELINE on port $XPORT"
fi

# answers before load: the data set's A / SRV / NXDOMAIN, a forwarded name, a never-seen forwarded name
check_fwd() { # name port
  "$PY" - "$2" "$1" <<'CHECK' || die "$1: wrong answers for forwarded names"
import sys, uuid
import dns.message, dns.query, dns.rcode
port = int(sys.argv[1])
for name, want in (("host-7.example.test.", "10.99.0.8"), (f"fresh-{uuid.uuid4().hex}.example.test.", "10.99.1.1")):
    r = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=2)
    got = [rd.to_text() for rrset in r.answer for rd in rrset]
    if r.rcode() != dns.rcode.NOERROR or want not in got:
        sys.exit(f"{sys.argv[2]} {name}: rcode {dns.rcode.to_text(r.rcode())}, answer {got}")
CHECK
}
OURS=("pyk3s $PPORT $PPID_")
[ -n "$BASELINE" ] && OURS+=("pyk3s-base $XPORT $XPID")
for sp in "knot $PORT" "${OURS[@]}"; do
  set -- $sp
  "$PY" "$PEERS/dns/check_answers.py" "$2" || die "$1: wrong answers for the cluster data set"
done
for sp in "unbound $BPORT" "${OURS[@]}"; do
  set -- $sp
  check_fwd "$1" "$2"
done
log "answers checked: knot, unbound, ${OURS[*]%% *}"

CPU="$SYSPY $PEERS/lib/proctree_cpu.py"
# resident memory in MiB of a server: the PID and all its descendants (workers)
rss_mib() {
  local kib=0 p v
  for p in $($CPU --pids "$1"); do
    v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null); kib=$(( kib + ${v:-0} ))
  done
  awk -v k="$kib" 'BEGIN{printf "%.1f", k/1024}'
}
queries() { # set server tag -> query file
  if [ "$1" = fwd-miss ]; then miss_file "$2-$3"; else echo "$BENCH_TMP/q-$1.txt"; fi
}
# one max-QPS run of dnsperf against server NAME on PORT with PID; appends to results
max_run() { # name port pid set round
  local s=$1 port=$2 pid=$3 set=$4 r=$5 f q c0 c1 qps avg sd lost us
  f="$OUTDIR/$s-$set-max-$r.txt"; q=$(queries "$set" "$s" "r$r")
  c0=$($CPU "$pid")
  "${TS_LOAD[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$q" -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION" >"$f" 2>&1
  c1=$($CPU "$pid")
  read -r qps avg sd lost < <("$SYSPY" "$PEERS/lib/parse.py" dnsperf "$f")
  # server CPU microseconds per answered query: stays meaningful when other work shares the cores
  us=$(awk -v a="$c0" -v b="$c1" -v q="$qps" -v d="$DURATION" 'BEGIN{ if (q>0) printf "%.2f", (b-a)*1e6/(q*d); else print "nan"}')
  echo "$s $set max $r $qps $lost $us" >>"$OUTDIR/results.txt"
  log "$s $set round $r: qps=$qps lost=${lost}% cpu=${us}us/query"
}
rate_run() { # name port set
  local s=$1 port=$2 set=$3 f q p50 p99 n
  f="$OUTDIR/$s-$set-rate.txt"; q=$(queries "$set" "$s" rate)
  "${TS_LOAD[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$q" -c "$CLIENTS" -Q "$RATE" -l "$RATE_DURATION" -v >"$f" 2>&1
  read -r p50 p99 n < <("$SYSPY" "$PEERS/lib/parse.py" dnsperf-v "$f")
  grep -v '^> ' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
  echo "$s $set rate 0 $p50 $p99" >>"$OUTDIR/results.txt"
  log "$s $set: p50=${p50}ms p99=${p99}ms @${RATE}qps"
}

: >"$OUTDIR/results.txt"
KRSS0=$(rss_mib "$KPID"); BRSS0=$(rss_mib "$BPID"); PRSS0=$(rss_mib "$PPID_")
XRSS0=""; [ -n "$XPID" ] && XRSS0=$(rss_mib "$XPID")
IFS=',' read -r -a SETL <<<"$SETS"
for set in "${SETL[@]}"; do
  case "$set" in
    cluster|nx) peer=knot; peer_port=$PORT; peer_pid=$KPID ;;
    fwd-hit|fwd-miss) peer=unbound; peer_port=$BPORT; peer_pid=$BPID ;;
    *) die "unknown set $set" ;;
  esac
  for sp in "$peer $peer_port" "${OURS[@]}"; do   # warm-up (fills the caches for fwd-hit)
    set -- $sp
    "${TS_LOAD[@]}" dnsperf -s 127.0.0.1 -p "$2" -d "$(queries "$set" "$1" warm)" -c "$CLIENTS" -q "$OUTSTANDING" -l 2 >/dev/null 2>&1
  done
  for r in $(seq 1 "$ROUNDS"); do
    max_run "$peer" "$peer_port" "$peer_pid" "$set" "$r"
    for sp in "${OURS[@]}"; do
      set -- $sp
      max_run "$1" "$2" "$3" "$set" "$r"
    done
  done
  rate_run "$peer" "$peer_port" "$set"
  for sp in "${OURS[@]}"; do
    set -- $sp
    rate_run "$1" "$2" "$set"
  done
  rm -f "$BENCH_TMP"/q-miss-*.txt
  echo "$set $peer" >>"$OUTDIR/peers.txt"
done
KRSS1=$(rss_mib "$KPID"); BRSS1=$(rss_mib "$BPID"); PRSS1=$(rss_mib "$PPID_")
XRSS1=""; [ -n "$XPID" ] && XRSS1=$(rss_mib "$XPID")
[ -n "$XPID" ] && stop_pid "$XPID"
stop_pid "$PPID_"; stop_pid "$API_PID"; stop_pid "$BPID"; stop_pid "$KPID"; stop_pid "$UP_PID"

echo
echo "workers: $WORKERS each; pin=$PIN; $ROUNDS rounds x ${DURATION}s, interleaved (medians; spread = ± half the range)"
"$SYSPY" - "$OUTDIR/results.txt" "$RATE" "${SETL[@]}" <<'REPORT' | tee "$OUTDIR/summary.txt"
import statistics, sys
path, rate, sets = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [line.split() for line in open(path)]
peer_of = {"cluster": "knot", "nx": "knot", "fwd-hit": "unbound", "fwd-miss": "unbound"}
def col(server, s, kind, i):
    return [float(r[i]) for r in rows if r[0] == server and r[1] == s and r[2] == kind and r[i] != "nan"]
def med(v):
    return statistics.median(v) if v else float("nan")
def spread(v):
    m = med(v)
    return f"±{(max(v) - min(v)) / 2 / m * 100:.0f}%" if v and m else "n/a"
print(f"| set | peer | peer qps | pyk3s qps | ratio | spread peer / pyk3s | CPU us/query peer / pyk3s "
      f"| p50 ms peer / pyk3s | p99 ms peer / pyk3s (at {rate} qps) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for s in sets:
    peer = peer_of[s]
    pq, kq = col("pyk3s", s, "max", 4), col(peer, s, "max", 4)
    pu, ku = col("pyk3s", s, "max", 6), col(peer, s, "max", 6)
    kr = next((r for r in rows if r[0] == peer and r[1] == s and r[2] == "rate"), ["", "", "", "", "nan", "nan"])
    pr = next((r for r in rows if r[0] == "pyk3s" and r[1] == s and r[2] == "rate"), ["", "", "", "", "nan", "nan"])
    ratio = med(pq) / med(kq) if kq and med(kq) else float("nan")
    print(f"| {s} | {peer} | {med(kq):,.0f} | {med(pq):,.0f} | {ratio:.2f}x | {spread(kq)} / {spread(pq)} "
          f"| {med(ku):.1f} / {med(pu):.1f} | {kr[4]} / {pr[4]} | {kr[5]} / {pr[5]} |")
if any(r[0] == "pyk3s-base" for r in rows):
    print()
    print("baseline (pyk3s-base) in the same rounds:")
    print("| set | peer | baseline qps | baseline ratio | pyk3s ratio | pyk3s/baseline qps | spread baseline "
          "| CPU us/query peer / baseline / pyk3s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for s in sets:
        peer = peer_of[s]
        kq, pq, xq = col(peer, s, "max", 4), col("pyk3s", s, "max", 4), col("pyk3s-base", s, "max", 4)
        ku, pu, xu = col(peer, s, "max", 6), col("pyk3s", s, "max", 6), col("pyk3s-base", s, "max", 6)
        ratio = lambda a, b: med(a) / med(b) if a and b and med(b) else float("nan")
        print(f"| {s} | {peer} | {med(xq):,.0f} | {ratio(xq, kq):.2f}x | {ratio(pq, kq):.2f}x | {ratio(pq, xq):.2f}x "
              f"| {spread(xq)} | {med(ku):.1f} / {med(xu):.1f} / {med(pu):.1f} |")
REPORT
printf 'memory (RSS MiB, %s services, all processes): knot %s loaded, %s after; unbound %s, %s after; pyk3s coredns %s loaded, %s after\n' \
  "$SERVICES" "$KRSS0" "$KRSS1" "$BRSS0" "$BRSS1" "$PRSS0" "$PRSS1" | tee -a "$OUTDIR/summary.txt"
[ -n "$XPID" ] && printf 'baseline pyk3s coredns: %s loaded, %s after\n' "$XRSS0" "$XRSS1" | tee -a "$OUTDIR/summary.txt"
echo "ratio = pyk3s/peer max QPS; CPU us/query = server CPU per query at max load; raw output in $OUTDIR"
