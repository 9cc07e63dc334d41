#!/usr/bin/env bash
# TCP and UDP routers: pyk3s traefik vs haproxy `mode tcp` vs the direct path, same run, interleaved.
#
# Tests (--tests, comma separated):
#   cps-sni   new connections/s through a TLS passthrough route: wrk -H 'Connection: close' over HTTPS
#             (a full TLS handshake per connection, SNI "localhost") to nginx `return 200`; pyk3s routes with
#             HostSNI(`localhost`) + tls.passthrough, haproxy with `req.ssl_sni` (both also hold a second
#             name routed elsewhere, so the SNI really decides)
#   cps-star  new connections/s through a HostSNI(`*`) route (plain TCP): wrk -H 'Connection: close' over HTTP
#   tput-sni  single-stream throughput through the passthrough route: curl downloads a sparse file over HTTPS
#   tput-star single-stream throughput through the HostSNI(`*`) route: iperf3 -t DURATION
#   udp       DNS queries/s through an IngressRouteUDP entry point (dnsperf -> pyk3s -> knot) vs direct
#             (haproxy has no UDP): pyk3s relays in the kernel (`--udpRelay=kernel`: nftables DNAT on the
#             entry point's 127.0.0.1 port, table pyk3s-ingress-udp-<pid>, removed when it stops; needs root)
#             and pyk3s-user in userspace (`--udpRelay=userspace`, what runs with access logs on)
# Paths: direct (no middlebox), haproxy (nbthread = --workers), pyk3s (`pyk3s traefik --workers`).
# Every answer is checked before the load (the TLS client verifies the backend's own certificate through
# every path). Runs are interleaved (direct, haproxy, pyk3s, direct, ...); the report gives the median
# of --runs and the spread (min-max), the middlebox's CPU per run and per connection or query (us/op)
# and pyk3s's ratios against the targets: throughput >= 0.9x haproxy, connections/s >= 0.8x haproxy,
# UDP >= 0.8x direct. The per-connection CPU of a HostSNI(*) route alone: bench/tcp_cpu.py.
#
#   bench/tcp.sh [--pin] [--runs 3] [--duration 10] [--conns 64] [--workers N] [--tests LIST] [--out DIR]
#
# --pin: the middlebox alone on CPU 1, load generators and backends on CPU 0 (taskset); default workers:
# 1 pinned, 2 unpinned. Everything listens on 127.0.0.1 on free ports; every process is stopped by PID.
# The kernel UDP relay's work is done in the sending processes' kernel time: its middlebox CPU is ~0.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PEERS="${PEERS_DIR:-/work/shared/peers}"
# shellcheck source=/dev/null
. "$PEERS/lib/common.sh"

DURATION=10; CONNS=64; WORKERS=""; RUNS=3; PIN=0; OUTDIR=""
TESTS="cps-sni,cps-star,tput-sni,tput-star,udp"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --tests) TESTS=$2; shift 2 ;;
    --out) OUTDIR=$2; shift 2 ;;
    --pin) PIN=1; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) die "unknown option $1" ;;
  esac
done
has_test() { [[ ",$TESTS," == *",$1,"* ]]; }
need nginx haproxy wrk curl ss openssl
has_test tput-star && need iperf3
has_test udp && need dnsperf knotd
PY="${BENCH_PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
TS_LOAD=(); TS_MB=(); MODE=unpinned
if [ "$PIN" = 1 ]; then
  need taskset
  [ "$(nproc)" -ge 2 ] || die "--pin needs 2 CPUs"
  TS_LOAD=(taskset -c 0); TS_MB=(taskset -c 1); MODE=pinned
fi
[ -n "$WORKERS" ] || { WORKERS=2; [ "$PIN" = 1 ] && WORKERS=1; }
[ "$(getent ahosts localhost | awk 'NR==1{print $1}')" = 127.0.0.1 ] || die "localhost must resolve to 127.0.0.1 first"

bench_tmp
OUTDIR="${OUTDIR:-${TMPDIR:-/tmp}/pyk3s-bench/tcp-$MODE}"
init_results
free_port() { "$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
free_udp() { "$PY" -c 'import socket;s=socket.socket(type=socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
{
  echo "date: $(date -u +%FT%TZ)  mode: $MODE  workers: $WORKERS  duration ${DURATION}s x$RUNS  conns $CONNS"
  echo "kernel: $(uname -r)  cpus: $(nproc)  load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "haproxy: $(haproxy -v | head -1)"; echo "nginx: $(nginx -v 2>&1)"; echo "wrk: $(wrk -v 2>&1 | head -1)"
  echo "pyk3s: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
} | tee "$OUTDIR/versions.txt" >&2

# ------------------------------------------------------------------ backends (CPU 0 when pinned)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost" -keyout "$BENCH_TMP/key.pem" -out "$BENCH_TMP/cert.pem" 2>/dev/null \
  || die "openssl could not make a certificate"
truncate -s 64G "$BENCH_TMP/big"   # sparse: read from no disk
NGINX_PLAIN=$(free_port); NGINX_TLS=$(free_port)
cat >"$BENCH_TMP/nginx.conf" <<EOF
worker_processes 1;
pid $BENCH_TMP/nginx.pid;
error_log $BENCH_TMP/nginx-error.log warn;
events { worker_connections 16384; }
http {
  access_log off; sendfile on;
  client_body_temp_path $BENCH_TMP/n_body; proxy_temp_path $BENCH_TMP/n_proxy;
  fastcgi_temp_path $BENCH_TMP/n_fcgi; uwsgi_temp_path $BENCH_TMP/n_uwsgi; scgi_temp_path $BENCH_TMP/n_scgi;
  server { listen 127.0.0.1:$NGINX_PLAIN backlog=4096; location / { default_type text/plain; return 200 "ok"; } }
  server {
    listen 127.0.0.1:$NGINX_TLS ssl backlog=4096;
    ssl_certificate $BENCH_TMP/cert.pem; ssl_certificate_key $BENCH_TMP/key.pem;
    location = /big { alias $BENCH_TMP/big; default_type application/octet-stream; }
    location / { default_type text/plain; return 200 "ok"; }
  }
}
EOF
start_bg "$BENCH_TMP/nginx.log" "${TS_LOAD[@]}" nginx -p "$BENCH_TMP" -c "$BENCH_TMP/nginx.conf" -g 'daemon off;'
NGINX_PID=$LAST_PID
wait_port "$NGINX_TLS" tcp 15 "$NGINX_PID" "$BENCH_TMP/nginx.log"
BACKEND_PIDS=("$NGINX_PID")
if has_test tput-star; then
  IPERF=$(free_port)
  start_bg "$BENCH_TMP/iperf.log" "${TS_LOAD[@]}" iperf3 -s -p "$IPERF" -B 127.0.0.1
  IPERF_PID=$LAST_PID; BACKEND_PIDS+=("$IPERF_PID")
  wait_port "$IPERF" tcp 15 "$IPERF_PID" "$BENCH_TMP/iperf.log"
fi
if has_test udp; then
  DNS=$(free_udp)
  "$SYSPY" "$PEERS/dns/gen_zone.py" "$BENCH_TMP/zone" >/dev/null || die "gen_zone.py failed"
  mkdir -p "$BENCH_TMP/knot"; cp "$BENCH_TMP/zone/cluster.local.zone" "$BENCH_TMP/knot/"
  cat >"$BENCH_TMP/knot.conf" <<EOF
server:
    rundir: "$BENCH_TMP/knot"
    listen: 127.0.0.1@$DNS
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$BENCH_TMP/knot/db"
control:
    listen: "$BENCH_TMP/knot/knot.sock"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$BENCH_TMP/knot"
    semantic-checks: off
    journal-content: none
    zonefile-sync: -1
zone:
  - domain: cluster.local
    file: "cluster.local.zone"
EOF
  start_bg "$BENCH_TMP/knot.log" "${TS_LOAD[@]}" knotd -c "$BENCH_TMP/knot.conf"
  KNOT_PID=$LAST_PID; BACKEND_PIDS+=("$KNOT_PID")
  wait_port "$DNS" udp 15 "$KNOT_PID" "$BENCH_TMP/knot.log"
fi

# ------------------------------------------------------------------ middleboxes
# objects TARGET_PORT SNI(1|0) UDP_PORT : the Kubernetes objects pyk3s serves
objects() {
  local target=$1 sni=$2 udp=${3:-0}
  cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: be, namespace: default}
spec: {ports: [{name: tcp, port: 9000}, {name: dns, port: 53, protocol: UDP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: be-1, namespace: default, labels: {kubernetes.io/service-name: be}}
addressType: IPv4
ports: [{name: tcp, port: $target}, {name: dns, port: $udp, protocol: UDP}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
---
apiVersion: v1
kind: Service
metadata: {name: decoy, namespace: default}
spec: {ports: [{name: tcp, port: 9000}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: decoy-1, namespace: default, labels: {kubernetes.io/service-name: decoy}}
addressType: IPv4
ports: [{name: tcp, port: $NGINX_PLAIN}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteUDP
metadata: {name: dns, namespace: default}
spec:
  entryPoints: [udp]
  routes:
  - services: [{name: be, port: 53}]
---
EOF
  if [ "$sni" = 1 ]; then
    cat <<EOF
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: sni, namespace: default}
spec:
  entryPoints: [tcp]
  tls: {passthrough: true}
  routes:
  - match: HostSNI(\`localhost\`)
    services: [{name: be, port: 9000}]
  - match: HostSNI(\`other.example\`)
    services: [{name: decoy, port: 9000}]
EOF
  else
    cat <<EOF
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: star, namespace: default}
spec:
  entryPoints: [tcp]
  routes:
  - match: HostSNI(\`*\`)
    services: [{name: be, port: 9000}]
EOF
  fi
}

haproxy_conf() { # TARGET_PORT SNI(1|0) PORT
  local target=$1 sni=$2 port=$3
  {
    echo "global"; echo "  nbthread $WORKERS"; echo "  maxconn 8000"
    echo "defaults"; echo "  mode tcp"; echo "  timeout connect 5s"; echo "  timeout client 60s"; echo "  timeout server 60s"
    echo "frontend fe"; echo "  bind 127.0.0.1:$port"
    if [ "$sni" = 1 ]; then
      echo "  tcp-request inspect-delay 5s"
      echo "  tcp-request content accept if { req_ssl_hello_type 1 }"
      echo "  use_backend be if { req.ssl_sni -i localhost }"
      echo "  use_backend decoy if { req.ssl_sni -i other.example }"
    else
      echo "  default_backend be"
    fi
    echo "backend be"; echo "  server s1 127.0.0.1:$target"
    echo "backend decoy"; echo "  server s1 127.0.0.1:$NGINX_PLAIN"
  } >"$BENCH_TMP/haproxy.cfg"
}

declare -A PID PORT
# start_pyk3s NAME UDP_RELAY: one `pyk3s traefik` (its API on PORT[NAME_api] says how UDP is relayed)
start_pyk3s() {
  local name=$1 relay=$2
  PORT[$name]=$(free_port); PORT[${name}_udp]=$(free_udp); PORT[${name}_api]=$(free_port)
  start_bg "$BENCH_TMP/$name.log" "${TS_MB[@]}" env PYTHONPATH="$ROOT" "$PY" -m pyk3s traefik \
    "--entryPoints.tcp.address=127.0.0.1:${PORT[$name]}" "--entryPoints.udp.address=127.0.0.1:${PORT[${name}_udp]}/udp" \
    "--entryPoints.traefik.address=127.0.0.1:${PORT[${name}_api]}" --api.insecure "--udpRelay=$relay" \
    --providers.kubernetescrd "--objects=$BENCH_TMP/objects.yaml" "--workers=$WORKERS" --log.level=ERROR
  PID[$name]=$LAST_PID
  wait_port "${PORT[$name]}" tcp 60 "${PID[$name]}" "$BENCH_TMP/$name.log"
}
# start_middleboxes TARGET_PORT SNI(1|0) UDP(1|0)
MIDDLEBOXES=()
start_middleboxes() {
  local target=$1 sni=$2 udp=${3:-0}
  objects "$target" "$sni" "${DNS:-0}" >"$BENCH_TMP/objects.yaml"
  if [ "$udp" = 1 ]; then
    MIDDLEBOXES=(pyk3s_user); start_pyk3s pyk3s_user userspace
    if [ "$(id -u)" = 0 ]; then MIDDLEBOXES+=(pyk3s); start_pyk3s pyk3s kernel
    else log "udp: not root, the kernel relay (nftables) is left out"; fi
  else
    PORT[haproxy]=$(free_port); MIDDLEBOXES=(haproxy pyk3s)
    haproxy_conf "$target" "$sni" "${PORT[haproxy]}"
    start_bg "$BENCH_TMP/haproxy.log" "${TS_MB[@]}" haproxy -db -f "$BENCH_TMP/haproxy.cfg"
    PID[haproxy]=$LAST_PID
    start_pyk3s pyk3s userspace
    wait_port "${PORT[haproxy]}" tcp 15 "${PID[haproxy]}" "$BENCH_TMP/haproxy.log"
  fi
  sleep 1  # pyk3s applies the objects once its workers are up
  if [ "$udp" = 1 ]; then  # each pyk3s relays UDP the way it was asked to
    for m in "${MIDDLEBOXES[@]}"; do
      relay=$(curl -s -m 3 "http://127.0.0.1:${PORT[${m}_api]}/api/udp/routers" | "$PY" -c \
        'import json,sys; print(json.load(sys.stdin)[0].get("relay", "?"))' 2>/dev/null)
      log "udp: $m relays: ${relay:-?}"
      case "$m:$relay" in pyk3s:kernel*|pyk3s_user:userspace*) ;; *) die "udp: $m relays '$relay'" ;; esac
    done
  fi
}
stop_middleboxes() {
  local m
  for m in "${MIDDLEBOXES[@]}"; do
    stop_pid "${PID[$m]}"
    if [ "$m" = pyk3s ] && nft list tables 2>/dev/null | grep -q "pyk3s-ingress-udp-${PID[$m]}\$"; then
      log "pyk3s left its table pyk3s-ingress-udp-${PID[$m]}: removed"; nft delete table inet "pyk3s-ingress-udp-${PID[$m]}"
    fi
  done
  sleep 0.5
}
port_of() { case "$1" in direct) echo "$2" ;; *) echo "${PORT[$1]}" ;; esac; }
mb_cpu() { case "$1" in direct) echo 0 ;; *) cpu_secs "${PID[$1]}" ;; esac; }

check_http() { # PATH URL
  local got
  for _ in $(seq 1 50); do
    got=$(curl -s -m 3 --cacert "$BENCH_TMP/cert.pem" "$2") && [ "$got" = ok ] && return 0
    sleep 0.2
  done
  die "$1: $2 answered '${got:-nothing}' instead of ok"
}

# ------------------------------------------------------------------ tests
PATHS=(direct haproxy pyk3s)
for test in cps-sni cps-star tput-sni tput-star udp; do
  has_test "$test" || continue
  case "$test" in
    cps-sni|tput-sni) target=$NGINX_TLS; sni=1 ;;
    cps-star) target=$NGINX_PLAIN; sni=0 ;;
    tput-star) target=$IPERF; sni=0 ;;
    udp) target=$NGINX_PLAIN; sni=0 ;;
  esac
  if [ "$test" = udp ]; then start_middleboxes "$target" 0 1; paths=(direct "${MIDDLEBOXES[@]}")
  else start_middleboxes "$target" "$sni"; paths=("${PATHS[@]}"); fi
  for p in "${paths[@]}"; do  # answers checked, then a short warm-up
    case "$test" in
      cps-sni|tput-sni) check_http "$p" "https://localhost:$(port_of "$p" "$NGINX_TLS")/" ;;
      cps-star) check_http "$p" "http://127.0.0.1:$(port_of "$p" "$NGINX_PLAIN")/" ;;
      tput-star) iperf3 -c 127.0.0.1 -p "$(port_of "$p" "$IPERF")" -t 1 >/dev/null 2>&1 || die "$p: iperf3 through the path failed" ;;
      udp) port=$DNS; [ "$p" != direct ] && port=${PORT[${p}_udp]}
           dig -p "$port" @127.0.0.1 +short +time=2 +tries=3 svc-0.ns-0.svc.cluster.local A 2>/dev/null | grep -q . \
             || "$SYSPY" "$PEERS/dns/check_answers.py" "$port" >/dev/null 2>&1 || die "$p: no DNS answer through the path" ;;
    esac
  done
  log "test $test: paths ${paths[*]}, $WORKERS worker(s)"
  for run in $(seq 1 "$RUNS"); do
    for p in "${paths[@]}"; do
      f="$OUTDIR/$test-$p-r$run.txt"
      c0=$(mb_cpu "$p")
      case "$test" in
        cps-sni) "${TS_LOAD[@]}" wrk -t2 -c"$CONNS" -d"${DURATION}s" -H 'Connection: close' \
                   "https://localhost:$(port_of "$p" "$NGINX_TLS")/" >"$f" 2>&1
                 read -r value _ _ errs < <("$SYSPY" "$PEERS/lib/parse.py" wrk "$f"); unit=conn_per_s ;;
        cps-star) "${TS_LOAD[@]}" wrk -t2 -c"$CONNS" -d"${DURATION}s" -H 'Connection: close' \
                    "http://127.0.0.1:$(port_of "$p" "$NGINX_PLAIN")/" >"$f" 2>&1
                  read -r value _ _ errs < <("$SYSPY" "$PEERS/lib/parse.py" wrk "$f"); unit=conn_per_s ;;
        tput-sni) "${TS_LOAD[@]}" curl -s -o /dev/null --cacert "$BENCH_TMP/cert.pem" -m "$DURATION" \
                    -w '%{speed_download}\n' "https://localhost:$(port_of "$p" "$NGINX_TLS")/big" >"$f" 2>/dev/null
                  value=$(awk '{printf "%.3f", $1*8/1e9}' "$f"); errs=0; unit=gbps ;;
        tput-star) "${TS_LOAD[@]}" iperf3 -c 127.0.0.1 -p "$(port_of "$p" "$IPERF")" -t "$DURATION" -J >"$f" 2>&1
                   value=$("$SYSPY" "$PEERS/lib/parse.py" iperf3 "$f"); errs=0; unit=gbps ;;
        udp) port=$DNS; [ "$p" != direct ] && port=${PORT[${p}_udp]}
             "${TS_LOAD[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$BENCH_TMP/zone/queries.txt" -c 4 -q 100 \
               -l "$DURATION" >"$f" 2>&1
             read -r value _ _ lost < <("$SYSPY" "$PEERS/lib/parse.py" dnsperf "$f"); errs=$lost; unit=qps ;;
      esac
      c1=$(mb_cpu "$p")
      cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')
      record tcp "$test" "$p" "$run" "$unit" "$value"
      record tcp "$test" "$p" "$run" errors "$errs"
      record tcp "$test" "$p" "$run" mb_cpu_s "$cpu"
      log "$test/$p run $run: $value $unit, errors $errs, middlebox CPU ${cpu}s"
    done
  done
  stop_middleboxes
done
for p in "${BACKEND_PIDS[@]}"; do stop_pid "$p"; done

# ------------------------------------------------------------------ report
"$PY" - "$RESULTS" "$MODE" "$WORKERS" "$CONNS" "$DURATION" "$RUNS" <<'EOF' | tee "$OUTDIR/summary.md"
import statistics, sys
from collections import defaultdict
path, mode, workers, conns, duration, runs = sys.argv[1:]
vals = defaultdict(list)
order = []
for line in open(path):
    test, proxy, _run, metric, value = line.rstrip("\n").split("\t")[1:]
    if (test, proxy) not in order:
        order.append((test, proxy))
    try:
        vals[test, proxy, metric].append(float(value))
    except ValueError:
        pass
units = {"cps-sni": "conn_per_s", "cps-star": "conn_per_s", "tput-sni": "gbps", "tput-star": "gbps", "udp": "qps"}
title = {"cps-sni": "new conns/s, TLS passthrough (SNI)", "cps-star": "new conns/s, HostSNI(*)",
         "tput-sni": "single stream Gbit/s, TLS passthrough", "tput-star": "single stream Gbit/s, HostSNI(*)",
         "udp": "UDP DNS queries/s"}
targets = {"cps-sni": ("haproxy", 0.8), "cps-star": ("haproxy", 0.8), "tput-sni": ("haproxy", 0.9),
           "tput-star": ("haproxy", 0.9), "udp": ("direct", 0.8)}
def med(t, p, m):
    v = vals[t, p, m]
    return statistics.median(v) if v else float("nan")
print(f"\n## TCP/UDP routers, {mode}, {workers} worker(s)/thread(s), {conns} connections, {duration}s x {runs} "
      "(median, spread min-max)\n")
print("| test | path | value | spread | errors | middlebox CPU s/run | CPU us/op | vs haproxy | vs direct |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
verdicts = []
for test, proxy in order:
    u = units[test]
    v = med(test, proxy, u)
    lo, hi = min(vals[test, proxy, u] or [0]), max(vals[test, proxy, u] or [0])
    h, d = med(test, "haproxy", u), med(test, "direct", u)
    rh = v / h if h == h and h else float("nan")
    rd = v / d if d == d and d else float("nan")
    errs = int(sum(vals[test, proxy, "errors"]))
    fmt = "{:,.0f}" if u != "gbps" else "{:.2f}"
    # CPU per connection or query: the middlebox's own cost, what a pinned run saturates on
    ops = [c / (x * float(duration)) * 1e6 for c, x in zip(vals[test, proxy, "mb_cpu_s"], vals[test, proxy, u]) if x]
    per_op = f"{statistics.median(ops):.1f}" if u != "gbps" and ops and proxy != "direct" else "-"
    print(f"| {title[test]} | {proxy} | {fmt.format(v)} {u} | {fmt.format(lo)}-{fmt.format(hi)} | {errs} | "
          f"{med(test, proxy, 'mb_cpu_s'):.2f} | {per_op} | {rh:.2f}x | {rd:.2f}x |")
    if proxy.startswith("pyk3s"):
        ref, want = targets[test]
        r = rh if ref == "haproxy" else rd
        what = title[test] + (" (" + proxy + ")" if proxy != "pyk3s" else "")
        verdicts.append(f"{what}: {'PASS' if r >= want else 'FAIL'} ({r:.2f}x {ref}, target {want}x)")
print("\npyk3s vs targets:\n" + "\n".join(f"- {v}" for v in verdicts))
EOF
log "raw output and results.tsv in $OUTDIR"
