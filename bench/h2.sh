#!/usr/bin/env bash
# HTTP/2 and gRPC benchmark: h2load -> {nginx (http2 + proxy_pass / grpc_pass), pyk3s traefik} -> the same
# backends: one nginx answering `return 200 "ok"` over HTTP/1.1, and a gRPC backend over h2c: by default
# the same nginx answering every call with one gRPC message and `grpc-status: 0` trailers (a C server, so
# the proxies are what is measured); `--grpc-backend python` uses a grpc.aio server (bench/h2_backend.py)
# instead, which serializes the streams of one connection (pyk3s multiplexes calls on one upstream
# connection as Traefik does, nginx opens one connection per call, so that backend measures itself).
#
# Scenarios (each proxy gets the same job, the same core budget and the same h2load command):
#   h2c    HTTP/2 with prior knowledge on a plain port, GET /, backend over HTTP/1.1 keep-alive
#   tls    HTTP/2 over TLS (ALPN h2), GET /, backend over HTTP/1.1 keep-alive
#   grpc   gRPC unary calls (POST /pk.Echo/Unary, one 16-byte message), h2c to the proxy and to the backend
# Load: h2load -c CONNS -m STREAMS (default 10 connections x 10 streams = 100 concurrent streams), for
# DURATION seconds after a warm-up. Runs are interleaved (nginx, pyk3s, nginx, ...) so drifting background
# load hits both alike; medians of RUNS are printed with the spread.
#
#   bench/h2.sh [--pin] [--runs 3] [--duration 10] [--conns 10] [--streams 10] [--workers N]
#               [--scenarios h2c,tls,grpc] [--grpc-backend nginx|python] [--max-other 30] [--retries 1]
#               [--out DIR]
#
# --pin       each proxy alone on CPU 1; h2load and the backends on CPU 0 (taskset); 1 worker each.
#             Default (unpinned): 2 workers each (nginx worker_processes, pyk3s --workers).
# --max-other a run is repeated (at most --retries times) when CPU used by processes outside this
#             benchmark exceeds this % of the machine during the run; the value is printed with each number.
# Every answer is checked before the load (curl --http2 / --http2-prior-knowledge, a grpcio call).
# Prints per scenario and proxy: req/s, p50, p99 (from h2load's per-request log), errors (non-2xx,
# failed, errored, timed out), proxy CPU µs per request, and the ratios to nginx; pyk3s is checked against
# the targets of HTTP/2 (>= 0.8x nginx req/s, p99 <= 1.5x).
#
# Everything listens on 127.0.0.1 on free ports; every process is stopped by its PID on exit.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PEERS="${PEERS_DIR:-/work/shared/peers}"
# shellcheck source=/dev/null
. "$PEERS/lib/common.sh"

DURATION=10; CONNS=10; STREAMS=10; WORKERS=""; RUNS=3; PIN=0; MAX_OTHER=30; RETRIES=1
SCENARIOS="h2c,tls,grpc"; OUTDIR=""; GRPC_BACKEND=nginx
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --streams) STREAMS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    --max-other) MAX_OTHER=$2; shift 2 ;;
    --retries) RETRIES=$2; shift 2 ;;
    --out) OUTDIR=$2; shift 2 ;;
    --pin) PIN=1; shift ;;
    --grpc-backend) GRPC_BACKEND=$2; shift 2 ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) die "unknown option $1" ;;
  esac
done
need nginx h2load ss curl
PY="${BENCH_PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
TS_LOAD=(); TS_PROXY=(); MODE=unpinned
if [ "$PIN" = 1 ]; then
  need taskset
  [ "$(nproc)" -ge 2 ] || die "--pin needs 2 CPUs"
  TS_LOAD=(taskset -c 0); TS_PROXY=(taskset -c 1); MODE=pinned
fi
[ -n "$WORKERS" ] || { WORKERS=2; [ "$PIN" = 1 ] && WORKERS=1; }
IFS=',' read -r -a SCEN <<<"$SCENARIOS"
PROX=(nginx pyk3s)

bench_tmp
OUTDIR="${OUTDIR:-${TMPDIR:-/tmp}/pyk3s-bench/h2-$MODE}"
init_results
free_port() { "$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
busy_secs() { awk -v t="$(getconf CLK_TCK)" '$1=="cpu" {printf "%.2f\n", ($2+$3+$4)/t}' /proc/stat; }

{
  echo "date: $(date -u +%FT%TZ)  mode: $MODE  workers: $WORKERS  h2load -c$CONNS -m$STREAMS -D$DURATION x$RUNS  gRPC backend: $GRPC_BACKEND"
  echo "kernel: $(uname -r)  cpus: $(nproc)  load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "nginx: $(nginx -v 2>&1)"; echo "h2load: $(h2load --version 2>&1 | head -1)"
  echo "python: $("$PY" -c 'import sys,h2,uvloop,grpc;print(sys.version.split()[0],"h2",h2.__version__,"uvloop",uvloop.__version__,"grpcio",grpc.__version__)')"
  echo "pyk3s: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) $(git -C "$ROOT" status --short -- pyk3s/addons/ingress | wc -l) changed files in pyk3s/addons/ingress"
} | tee "$OUTDIR/versions.txt" >&2

# ------------------------------------------------------------------ backends (CPU 0 when pinned)
BACKEND_PORT=$(free_port); GRPC_PORT=$(free_port)
"$PY" "$HERE/h2_backend.py" frame "$BENCH_TMP/grpc.req"
cp "$BENCH_TMP/grpc.req" "$BENCH_TMP/reply.bin"
case "$GRPC_BACKEND" in
  nginx)  # every call answered with the request's message (the same bytes) and grpc-status 0 in trailers,
          # after the request body was read (the mirror reads it; a POST to a file is 405, sent as a GET to it)
    GRPC_SERVER="  server { listen 127.0.0.1:$GRPC_PORT http2; root $BENCH_TMP; http2_max_concurrent_streams 1000;
    location / { mirror /m; mirror_request_body on; error_page 405 =200 /reply.bin; try_files /reply.bin =404; }
    location = /reply.bin { default_type application/grpc; add_trailer grpc-status 0 always; }
    location = /m { internal; return 204; } }" ;;
  python) GRPC_SERVER="" ;;
  *) die "unknown gRPC backend $GRPC_BACKEND" ;;
esac
cat >"$BENCH_TMP/backend.conf" <<EOF
worker_processes 1;
pid $BENCH_TMP/backend.pid;
error_log $BENCH_TMP/backend-error.log warn;
events { worker_connections 16384; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path $BENCH_TMP/b_body; proxy_temp_path $BENCH_TMP/b_proxy;
  fastcgi_temp_path $BENCH_TMP/b_fcgi; uwsgi_temp_path $BENCH_TMP/b_uwsgi; scgi_temp_path $BENCH_TMP/b_scgi;
  server { listen 127.0.0.1:$BACKEND_PORT; location / { default_type text/plain; return 200 "ok"; } }
$GRPC_SERVER
}
EOF
start_bg "$BENCH_TMP/backend.log" "${TS_LOAD[@]}" nginx -p "$BENCH_TMP" -c "$BENCH_TMP/backend.conf" -g 'daemon off;'
BACKEND_PID=$LAST_PID
wait_port "$BACKEND_PORT" tcp 15 "$BACKEND_PID" "$BENCH_TMP/backend.log"
if [ "$GRPC_BACKEND" = python ]; then
  start_bg "$BENCH_TMP/grpc.log" "${TS_LOAD[@]}" "$PY" "$HERE/h2_backend.py" serve "$GRPC_PORT"
  GRPC_PID=$LAST_PID
else
  GRPC_PID=$BACKEND_PID
fi
wait_port "$GRPC_PORT" tcp 30 "$GRPC_PID" "$BENCH_TMP/grpc.log"
BACKENDS="$BACKEND_PID"; [ "$GRPC_PID" = "$BACKEND_PID" ] || BACKENDS="$BACKEND_PID $GRPC_PID"

# a self-signed certificate for nginx (pyk3s serves its generated default certificate)
"$PY" - "$BENCH_TMP" <<'EOF' || die "cannot make a certificate"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.example")])
now = datetime.datetime.now(datetime.UTC)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("bench.example")]), critical=False).sign(key, hashes.SHA256()))
open(sys.argv[1] + "/cert.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(sys.argv[1] + "/key.pem", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()))
EOF

# ------------------------------------------------------------------ proxies
declare -A PID PORT
PORT[nginx]=$(free_port); PORT[nginx_tls]=$(free_port); PORT[pyk3s]=$(free_port); PORT[pyk3s_tls]=$(free_port)
NG="$BENCH_TMP/nginx"; mkdir -p "$NG"
cat >"$NG/nginx.conf" <<EOF
worker_processes $WORKERS;
pid $NG/nginx.pid;
error_log $NG/nginx-error.log warn;
events { worker_connections 16384; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 60s; http2_max_concurrent_streams 250;
  client_body_temp_path $NG/p_body; proxy_temp_path $NG/p_proxy;
  fastcgi_temp_path $NG/p_fcgi; uwsgi_temp_path $NG/p_uwsgi; scgi_temp_path $NG/p_scgi;
  upstream be { server 127.0.0.1:$BACKEND_PORT; keepalive 512; keepalive_requests 1000000; }
  upstream g { server 127.0.0.1:$GRPC_PORT; keepalive 64; keepalive_requests 1000000; }
  map \$http_content_type \$is_grpc { default 0; ~^application/grpc 1; }
  server {
    listen 127.0.0.1:${PORT[nginx]} http2 reuseport;
    listen 127.0.0.1:${PORT[nginx_tls]} ssl http2 reuseport;
    ssl_certificate $BENCH_TMP/cert.pem; ssl_certificate_key $BENCH_TMP/key.pem;
    server_name h.example g.example;
    location / {
      if (\$is_grpc) { grpc_pass grpc://g; }
      proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOF
cat >"$BENCH_TMP/objects.yaml" <<EOF
apiVersion: v1
kind: Service
metadata: {name: be, namespace: default}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: be-1, namespace: default, labels: {kubernetes.io/service-name: be}}
addressType: IPv4
ports: [{name: http, port: $BACKEND_PORT}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: v1
kind: Service
metadata: {name: g, namespace: default}
spec: {ports: [{name: grpc, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: g-1, namespace: default, labels: {kubernetes.io/service-name: g}}
addressType: IPv4
ports: [{name: grpc, port: $GRPC_PORT}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: h, namespace: default}
spec:
  entryPoints: [web, websecure]
  routes:
  - match: Host(\`h.example\`)
    kind: Rule
    services: [{name: be, port: 80}]
  - match: Host(\`g.example\`)
    kind: Rule
    services: [{name: g, port: 80, scheme: h2c}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: hs, namespace: default}
spec:
  entryPoints: [websecure]
  tls: {}
  routes:
  - match: Host(\`h.example\`)
    kind: Rule
    services: [{name: be, port: 80}]
EOF
start_bg "$NG/nginx.log" "${TS_PROXY[@]}" nginx -p "$NG" -c "$NG/nginx.conf" -g 'daemon off;'
PID[nginx]=$LAST_PID
wait_port "${PORT[nginx]}" tcp 15 "$LAST_PID" "$NG/nginx.log"
start_bg "$BENCH_TMP/pyk3s.log" "${TS_PROXY[@]}" env PYTHONPATH="$ROOT" "$PY" -m pyk3s traefik \
  "--entryPoints.web.address=127.0.0.1:${PORT[pyk3s]}" "--entryPoints.websecure.address=127.0.0.1:${PORT[pyk3s_tls]}" \
  --entryPoints.websecure.http.tls=true --providers.kubernetescrd "--objects=$BENCH_TMP/objects.yaml" \
  "--workers=$WORKERS" --log.level=ERROR
PID[pyk3s]=$LAST_PID
wait_port "${PORT[pyk3s]}" tcp 60 "$LAST_PID" "$BENCH_TMP/pyk3s.log"
wait_port "${PORT[pyk3s_tls]}" tcp 60 "$LAST_PID" "$BENCH_TMP/pyk3s.log"

# url SCENARIO PROXY ; hdrs SCENARIO : what h2load and curl ask for
url() {
  case "$1" in
    h2c) echo "http://127.0.0.1:${PORT[$2]}/" ;;
    tls) echo "https://127.0.0.1:${PORT[${2}_tls]}/" ;;
    grpc) echo "http://127.0.0.1:${PORT[$2]}/pk.Echo/Unary" ;;
  esac
}
load_args() {
  case "$1" in
    grpc) echo "-H :authority:g.example -H content-type:application/grpc -H te:trailers -d $BENCH_TMP/grpc.req" ;;
    *) echo "-H :authority:h.example" ;;
  esac
}

check() {  # check PROXY : every scenario answers correctly through it
  local s=$1 out
  out=$(curl -s --http2-prior-knowledge -o /dev/null -w '%{http_version} %{http_code}' -H 'Host: h.example' "$(url h2c "$s")")
  [ "$out" = "2 200" ] || die "$s: h2c answered '$out'"
  out=$(curl -sk --http2 -o /dev/null -w '%{http_version} %{http_code}' -H 'Host: h.example' "$(url tls "$s")")
  [ "$out" = "2 200" ] || die "$s: TLS h2 answered '$out'"
  "$PY" "$HERE/h2_backend.py" check "${PORT[$s]}" g.example >/dev/null || die "$s: the gRPC call failed"
}

# measure SCENARIO PROXY RUN : one h2load run, repeated (at most RETRIES times) when the machine was noisy
measure() {
  local scen=$1 s=$2 run=$3 try f lf pc0 pu0 ps0 pc1 pu1 ps1 bc0 bc1 b0 b1 wt rps p50 p99 errs load other
  local usr_us sys_us n
  for try in $(seq 1 $((RETRIES + 1))); do
    f="$OUTDIR/h2load-$scen-$s-r$run-t$try.txt"; lf="$BENCH_TMP/log-$scen-$s-$run-$try"
    load=$(cut -d' ' -f1 /proc/loadavg)
    # shellcheck disable=SC2086
    read -r pc0 pu0 ps0 < <(cpu_split "${PID[$s]}"); bc0=$(cpu_secs $BACKENDS); b0=$(busy_secs)
    # shellcheck disable=SC2046
    wt=$( { TIMEFORMAT='%U %S'; time "${TS_LOAD[@]}" h2load -c "$CONNS" -m "$STREAMS" -t 1 -D "$DURATION" \
            --warm-up-time=1 --log-file="$lf" $(load_args "$scen") "$(url "$scen" "$s")" >"$f" 2>&1; } 2>&1 )
    # shellcheck disable=SC2086
    read -r pc1 pu1 ps1 < <(cpu_split "${PID[$s]}"); bc1=$(cpu_secs $BACKENDS); b1=$(busy_secs)
    rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$f")
    # failed (answers other than 2xx included), errored and timed out requests
    errs=$(awk '/^requests:/ {gsub(",",""); e=$10+$12+$14} END {printf "%d", e}' "$f")
    read -r p50 p99 n < <("$PY" "$HERE/h2_backend.py" latency "$lf")
    other=$(awk -v b0="$b0" -v b1="$b1" -v p="$pc0 $pc1" -v bc="$bc0 $bc1" -v w="$wt" -v d="$DURATION" -v n="$(nproc)" \
      'BEGIN{split(p,P," "); split(bc,B," "); split(w,W," ");
             o=(b1-b0)-(P[2]-P[1])-(B[2]-B[1])-(W[1]+W[2]); if (o<0) o=0; printf "%.1f", 100*o/((d+1)*n)}')
    if awk -v o="$other" -v m="$MAX_OTHER" 'BEGIN{exit !(o>m)}' && [ "$try" -le "$RETRIES" ]; then
      log "$scen/$s run $run: machine busy (other ${other}%, load $load), repeating"
      sleep 5
      continue
    fi
    break
  done
  rps=${rps:-0}
  read -r usr_us sys_us < <(awk -v r="$rps" -v d="$DURATION" -v u0="$pu0" -v u1="$pu1" -v s0="$ps0" -v s1="$ps1" \
    'BEGIN{n=r*(d+1); if (n>0) printf "%.2f %.2f\n", (u1-u0)*1e6/n, (s1-s0)*1e6/n; else print "nan nan"}')
  for kv in "rps $rps" "p50_ms $p50" "p99_ms $p99" "errors $errs" "usr_us $usr_us" "sys_us $sys_us" \
            "load1 $load" "other_pct $other"; do
    # shellcheck disable=SC2086
    record h2 "$scen" "$s" "$run" $kv
  done
  log "$scen/$s run $run: $rps req/s p50=${p50}ms p99=${p99}ms errors=$errs cpu/req=${usr_us}+${sys_us}us load=$load other=${other}%"
}

for s in "${PROX[@]}"; do check "$s"; done
for scen in "${SCEN[@]}"; do
  case "$scen" in h2c|tls|grpc) ;; *) die "unknown scenario $scen" ;; esac
  # warm up: upstream connections, lazily built state
  for s in "${PROX[@]}"; do
    # shellcheck disable=SC2046
    "${TS_LOAD[@]}" h2load -c "$CONNS" -m "$STREAMS" -D 2 $(load_args "$scen") "$(url "$scen" "$s")" >/dev/null 2>&1
  done
  for run in $(seq 1 "$RUNS"); do
    for s in "${PROX[@]}"; do measure "$scen" "$s" "$run"; done
  done
done
for s in "${PROX[@]}"; do stop_pid "${PID[$s]}"; done
[ "$GRPC_PID" = "$BACKEND_PID" ] || stop_pid "$GRPC_PID"
stop_pid "$BACKEND_PID"

# ------------------------------------------------------------------ report
"$PY" - "$RESULTS" "$MODE" "$WORKERS" "$CONNS" "$STREAMS" "$DURATION" "$RUNS" <<'EOF' | tee "$OUTDIR/summary.md"
import statistics, sys
from collections import defaultdict
path, mode, workers, conns, streams, duration, runs = sys.argv[1:]
vals = defaultdict(list)
order = []
for line in open(path):
    scen, proxy, _run, metric, value = line.rstrip("\n").split("\t")[1:]
    if (scen, proxy) not in order:
        order.append((scen, proxy))
    try:
        vals[scen, proxy, metric].append(float(value))
    except ValueError:
        pass
med = lambda s, p, m: statistics.median(vals[s, p, m]) if vals[s, p, m] else float("nan")
def spread(s, p, m):
    """± half the range of the runs, % of the median."""
    v = vals[s, p, m]
    return f"±{(max(v) - min(v)) / 2 / med(s, p, m) * 100:.0f}%" if v and med(s, p, m) else ""
title = {"h2c": "HTTP/2 h2c, GET", "tls": "HTTP/2 TLS (ALPN), GET", "grpc": "gRPC unary (h2c)"}
print(f"\n## HTTP/2 proxies, {mode}, {workers} worker(s) each, h2load -c{conns} -m{streams} -D{duration}s, "
      f"median of {runs}\n")
print("| scenario | proxy | req/s | spread | p50 ms | p99 ms | errors | CPU µs/req (usr+sys) | req/s vs nginx "
      "| p99 vs nginx | load1 | other CPU % |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
verdicts = []
for scen, proxy in order:
    rps, p50, p99 = med(scen, proxy, "rps"), med(scen, proxy, "p50_ms"), med(scen, proxy, "p99_ms")
    nr, n99 = med(scen, "nginx", "rps"), med(scen, "nginx", "p99_ms")
    errs = int(sum(vals[scen, proxy, "errors"]))
    usr, sys_ = med(scen, proxy, "usr_us"), med(scen, proxy, "sys_us")
    r_rps, r_p99 = rps / nr if nr else float("nan"), p99 / n99 if n99 else float("nan")
    loads = vals[scen, proxy, "load1"] or [float("nan")]
    print(f"| {title.get(scen, scen)} | {proxy} | {rps:,.0f} | {spread(scen, proxy, 'rps')} | {p50:.2f} | {p99:.2f} | "
          f"{errs} | {usr:.1f}+{sys_:.1f} | {r_rps:.2f}x | {r_p99:.2f}x | {min(loads):.1f}-{max(loads):.1f} | "
          f"{med(scen, proxy, 'other_pct'):.1f} |")
    if proxy == "pyk3s":
        if scen == "grpc":
            verdicts.append(f"{title[scen]}: {r_rps:.2f}x nginx's calls/s, p99 {r_p99:.2f}x, errors {errs}")
        else:
            ok = r_rps >= 0.8 and r_p99 <= 1.5 and errs == 0
            verdicts.append(f"{title.get(scen, scen)}: {'PASS' if ok else 'FAIL'} "
                            f"(req/s {r_rps:.2f}x >= 0.8x, p99 {r_p99:.2f}x <= 1.5x, errors {errs})")
if verdicts:
    print("\npyk3s vs target: " + "; ".join(verdicts))
EOF
log "raw h2load output and results.tsv in $OUTDIR"
