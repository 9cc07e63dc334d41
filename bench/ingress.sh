#!/usr/bin/env bash
# Ingress proxy benchmark: wrk -> {pyk3s traefik, nginx, haproxy} -> one nginx backend returning "ok".
# Every proxy gets the same job and core budget (2 workers/threads by default): 1,000 Host routes
# (h0.example .. h999.example), basicAuth (apr1) on the measured one, keep-alive to the backend.
# wrk hits h500.example with valid credentials. Prints req/s, p50 and p99 per proxy and the ratio to nginx.
#
#   bench/ingress.sh [--duration 10] [--conns 64] [--workers 2] [--runs 1] [--routes 1000] [--no-auth] [--pin]
#
# Note: nginx and haproxy run MD5-crypt on every request; pyk3s remembers credentials it has verified,
# so with basicAuth on the comparison measures that design choice too. --no-auth compares plain proxying.
#
# Everything listens on 127.0.0.1 on free ports; every process is stopped by PID on exit.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PEERS="${PEERS_LIB:-/work/shared/peers/lib}"
# shellcheck source=/dev/null
. "$PEERS/common.sh"

DURATION=10; CONNS=64; WORKERS=2; RUNS=1; ROUTES=1000; PIN=0; THREADS=2; AUTH_ON=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --routes) ROUTES=$2; shift 2 ;;
    --pin) PIN=1; shift ;;
    --no-auth) AUTH_ON=0; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) die "unknown option $1" ;;
  esac
done
need nginx haproxy wrk ss python3
PY="${BENCH_PYTHON:-python3}"
TS_LOAD=(); TS_PROXY=()
if [ "$PIN" = 1 ]; then TS_LOAD=(taskset -c 0); TS_PROXY=(taskset -c 1); fi

free_port() { "$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
BACKEND_PORT=$(free_port); PROXY_PORT=$(free_port)
bench_tmp
OUTDIR="${OUTDIR:-${TMPDIR:-/tmp}/pyk3s-bench/ingress}"
init_results
HOST="h$((ROUTES / 2)).example"
AUTH="Authorization: Basic $(printf 'test:test' | base64)"
HTPASSWD='test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/'
printf '%s\n' "$HTPASSWD" >"$BENCH_TMP/htpasswd"

# ------------------------------------------------------------------ backend
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
}
EOF
start_bg "$BENCH_TMP/backend.log" "${TS_LOAD[@]}" nginx -p "$BENCH_TMP" -c "$BENCH_TMP/backend.conf" -g 'daemon off;'
BACKEND_PID=$LAST_PID
wait_port "$BACKEND_PORT" tcp 15 "$BACKEND_PID" "$BENCH_TMP/backend.log"

# ------------------------------------------------------------------ configs
AUTH_ROUTE=$((ROUTES / 2)); [ "$AUTH_ON" = 1 ] || AUTH_ROUTE=-1
"$PY" - "$ROUTES" "$BACKEND_PORT" "$HTPASSWD" "$AUTH_ROUTE" >"$BENCH_TMP/objects.yaml" <<'EOF'
import base64, sys
routes, port, htpasswd, auth_route = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
print(f"""apiVersion: v1
kind: Service
metadata: {{name: be, namespace: default}}
spec: {{ports: [{{name: http, port: 80}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: be-1, namespace: default, labels: {{kubernetes.io/service-name: be}}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints: [{{addresses: [127.0.0.1]}}]
---
apiVersion: v1
kind: Secret
metadata: {{name: auth, namespace: default}}
data: {{users: {base64.b64encode((htpasswd + chr(10)).encode()).decode()}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: auth, namespace: default}}
spec: {{basicAuth: {{secret: auth}}}}""")
for i in range(routes):
    mw = "\n    middlewares: [{name: auth}]" if i == auth_route else ""
    print(f"""---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: r{i}, namespace: default}}
spec:
  routes:
  - match: Host(`h{i}.example`)
    kind: Rule
    services: [{{name: be, port: 80}}]{mw}""")
EOF

{
  echo "worker_processes $WORKERS;"
  echo "pid $BENCH_TMP/proxy.pid;"
  echo "error_log $BENCH_TMP/proxy-error.log warn;"
  echo "events { worker_connections 16384; }"
  echo "http {"
  echo "  access_log off; keepalive_requests 1000000; keepalive_timeout 60s;"
  echo "  client_body_temp_path $BENCH_TMP/p_body; proxy_temp_path $BENCH_TMP/p_proxy;"
  echo "  fastcgi_temp_path $BENCH_TMP/p_fcgi; uwsgi_temp_path $BENCH_TMP/p_uwsgi; scgi_temp_path $BENCH_TMP/p_scgi;"
  echo "  server_names_hash_max_size 4096; server_names_hash_bucket_size 64;"
  echo "  upstream be { server 127.0.0.1:$BACKEND_PORT; keepalive 512; keepalive_requests 1000000; }"
  for i in $(seq 0 $((ROUTES - 1))); do
    auth=""
    [ "$i" = "$AUTH_ROUTE" ] && auth="auth_basic \"traefik\"; auth_basic_user_file $BENCH_TMP/htpasswd;"
    lopt=""; [ "$i" = 0 ] && lopt=" reuseport"
    echo "  server { listen 127.0.0.1:$PROXY_PORT$lopt; server_name h$i.example; location / { $auth proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } }"
  done
  echo "}"
} >"$BENCH_TMP/nginx.conf"

{
  echo "global"; echo "  nbthread $WORKERS"; echo "  maxconn 8000"
  # glibc crypt(3) has no $apr1$: give haproxy the same password as MD5-crypt ($1$), same cost class
  echo "userlist users"; echo "  user test password $("$PY" -c 'from passlib.hash import md5_crypt;print(md5_crypt.hash("test"))')"
  echo "defaults"; echo "  mode http"; echo "  timeout connect 5s"; echo "  timeout client 60s"; echo "  timeout server 60s"
  echo "  option http-keep-alive"
  echo "frontend fe"; echo "  bind 127.0.0.1:$PROXY_PORT"
  [ "$AUTH_ON" = 1 ] && echo "  http-request auth realm traefik if { hdr(host) -i $HOST } !{ http_auth(users) }"
  for i in $(seq 0 $((ROUTES - 1))); do echo "  use_backend be if { hdr(host) -i h$i.example }"; done
  echo "backend be"; echo "  http-reuse always"; echo "  option forwardfor"; echo "  server s1 127.0.0.1:$BACKEND_PORT"
} >"$BENCH_TMP/haproxy.cfg"

# ------------------------------------------------------------------ run
start_proxy() {
  case "$1" in
    pyk3s) start_bg "$BENCH_TMP/proxy.log" "${TS_PROXY[@]}" env PYTHONPATH="$ROOT" "$PY" -m pyk3s traefik \
             "--entryPoints.web.address=127.0.0.1:$PROXY_PORT" --providers.kubernetescrd \
             "--objects=$BENCH_TMP/objects.yaml" "--workers=$WORKERS" --log.level=ERROR ;;
    nginx) start_bg "$BENCH_TMP/proxy.log" "${TS_PROXY[@]}" nginx -p "$BENCH_TMP" -c "$BENCH_TMP/nginx.conf" -g 'daemon off;' ;;
    haproxy) start_bg "$BENCH_TMP/proxy.log" "${TS_PROXY[@]}" haproxy -db -f "$BENCH_TMP/haproxy.cfg" ;;
  esac
  PROXY_PID=$LAST_PID
  wait_port "$PROXY_PORT" tcp 30 "$PROXY_PID" "$BENCH_TMP/proxy.log"
  sleep 1
}

check() { # the route answers 200 with credentials and 401 without
  local ok no
  ok=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $HOST" -H "$AUTH" "http://127.0.0.1:$PROXY_PORT/")
  no=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $HOST" "http://127.0.0.1:$PROXY_PORT/")
  local want=401; [ "$AUTH_ON" = 1 ] || want=200
  [ "$ok" = 200 ] && [ "$no" = "$want" ] || die "$1: expected 200/$want, got $ok/$no"
}

declare -A RPS P50 P99
for s in nginx haproxy pyk3s; do
  start_proxy "$s"
  check "$s"
  "${TS_LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d2s -H "Host: $HOST" -H "$AUTH" "http://127.0.0.1:$PROXY_PORT/" >/dev/null
  for run in $(seq 1 "$RUNS"); do
    out=$("${TS_LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H "Host: $HOST" -H "$AUTH" \
          "http://127.0.0.1:$PROXY_PORT/")
    echo "$out" >"$OUTDIR/wrk-$s-$run.txt"
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
    record ingress "$s" "c$CONNS" "$run" rps "$rps"
    RPS[$s]=$rps; P50[$s]=$p50; P99[$s]=$p99
    [ -n "$errs" ] && log "$s: $errs"
  done
  stop_pid "$PROXY_PID"
  sleep 0.5
done

printf '\n%-8s %12s %10s %10s %12s\n' proxy req/s p50 p99 "vs nginx"
for s in nginx haproxy pyk3s; do
  ratio=$(awk -v a="${RPS[$s]}" -v b="${RPS[nginx]}" 'BEGIN { printf "%.2fx", a / b }')
  printf '%-8s %12s %10s %10s %12s\n' "$s" "${RPS[$s]}" "${P50[$s]}" "${P99[$s]}" "$ratio"
done
echo "(routes: $ROUTES, basicAuth $([ "$AUTH_ON" = 1 ] && echo "on $HOST" || echo off), $WORKERS workers/threads each, wrk -t$THREADS -c$CONNS -d${DURATION}s)"
