#!/usr/bin/env bash
# Ingress proxy benchmark: wrk -> {nginx, haproxy, pyk3s traefik, lean Python reference} -> one nginx
# backend answering `return 200 "ok"` (so the proxy, not the backend, is what is measured).
#
# Scenarios (each proxy gets the same job and the same core budget):
#   random  --routes Host routes (h0.example .. hN-1.example); every request picks its Host at random
#           among them (wrk Lua, the same seeded sequence for every proxy): a routing figure, since no
#           per-connection memo can answer it (the figure the README quotes)
#   one     1 Host route, no auth
#   routes  --routes Host routes, wrk sends the middle one's Host on every request (single Host)
#   auth    like routes, basicAuth (apr1 htpasswd) on the route wrk hits, valid credentials sent;
#           pyk3s caches credentials it has verified (a changed or deleted Secret takes effect at
#           once), nginx and haproxy run MD5-crypt on every request, so this measures that design
# All proxies of a scenario run side by side (idle ones cost nothing) and the runs are interleaved
# (nginx, haproxy, pyk3s, ref, nginx, ...) so drifting background load hits every proxy alike.
#
#   bench/ingress.sh [--pin] [--runs 3] [--duration 10] [--conns 64] [--threads 2] [--workers N]
#                    [--routes 1000] [--scenarios random,one,routes,auth] [--proxies nginx,haproxy,pyk3s,ref]
#                    [--max-other 30] [--retries 1] [--out DIR] [--baseline SRC]
#
# --baseline SRC  also runs `pyk3s traefik` from the source tree SRC (e.g. `git worktree add --detach
#             /tmp/base <commit>`), same objects, same workers, interleaved with the others in every
#             run: before/after figures from one sitting (reported as "pyk3s-base", with pyk3s/base ratios).
#
# --pin       every proxy alone on CPU 1, wrk and the backend on CPU 0 (taskset), as the peers' bench;
#             default workers: 1 pinned, 2 unpinned (nginx worker_processes, haproxy nbthread, pyk3s --workers).
# --max-other a run is repeated (at most --retries times) when CPU used by processes outside this
#             benchmark exceeds this % of the machine during the run (other engineers' test runs); the
#             value is reported next to every number together with the 1-minute load average.
# Prints per scenario and proxy the medians of req/s, p50, p99, the error count (non-2xx + socket
# errors), the proxy's CPU µs per request (user+sys) and the ratios to nginx; pyk3s is checked
# against the targets (>= 0.9x nginx req/s, <= 1.5x nginx p99).
# `ref` is ../shared/peers/http/proxy_httptools.py (one catch-all route, no routing, no auth): shown for
# scale, skipped in `auth`. haproxy looks the Host up in a map (one tree lookup, as one would configure
# 1,000 hosts), nginx in its server_name hash.
# Before any load every proxy is checked: the first and last route and a random one answer 200, an
# unknown Host does not (and in `auth` a request without credentials gets 401).
#
# Everything listens on 127.0.0.1 on free ports; every process is stopped by its PID on exit.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=bench/peers.sh
. "$HERE/peers.sh"

DURATION=10; CONNS=64; WORKERS=""; RUNS=3; ROUTES=1000; PIN=0; THREADS=2; MAX_OTHER=30; RETRIES=1
SCENARIOS="random,one,routes,auth"; PROXIES="nginx,haproxy,pyk3s,ref"; OUTDIR=""; BASELINE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --routes) ROUTES=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    --proxies) PROXIES=$2; shift 2 ;;
    --max-other) MAX_OTHER=$2; shift 2 ;;
    --retries) RETRIES=$2; shift 2 ;;
    --out) OUTDIR=$2; shift 2 ;;
    --pin) PIN=1; shift ;;
    --baseline) BASELINE=$(cd "$2" && pwd) || die "no directory $2"; shift 2 ;;
    -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
    *) die "unknown option $1" ;;
  esac
done
need nginx haproxy wrk ss curl
PY="${BENCH_PYTHON:-$ROOT/.venv/bin/python}"
TS_LOAD=(); TS_PROXY=(); MODE=unpinned
if [ "$PIN" = 1 ]; then
  need taskset
  [ "$(nproc)" -ge 2 ] || die "--pin needs 2 CPUs"
  TS_LOAD=(taskset -c 0); TS_PROXY=(taskset -c 1); MODE=pinned
fi
[ -n "$WORKERS" ] || { WORKERS=2; [ "$PIN" = 1 ] && WORKERS=1; }
IFS=',' read -r -a SCEN <<<"$SCENARIOS"
[ -z "$BASELINE" ] || PROXIES="$PROXIES,pyk3s-base"
IFS=',' read -r -a PROX <<<"$PROXIES"

bench_tmp
OUTDIR="${OUTDIR:-${TMPDIR:-/tmp}/pyk3s-bench/ingress-$MODE}"
init_results
free_port() { "$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# busy CPU seconds of the whole machine (user+nice+system; softirq is excluded like in process accounting)
busy_secs() { awk -v t="$(getconf CLK_TCK)" '$1=="cpu" {printf "%.2f\n", ($2+$3+$4)/t}' /proc/stat; }
AUTH="Authorization: Basic $(printf 'test:test' | base64)"
HTPASSWD='test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/'
MD5_HASH=$("$PY" -c 'from passlib.hash import md5_crypt;print(md5_crypt.hash("test"))') || die "passlib missing"

{
  echo "date: $(date -u +%FT%TZ)  mode: $MODE  workers: $WORKERS  wrk -t$THREADS -c$CONNS -d${DURATION}s x$RUNS"
  echo "kernel: $(uname -r)  cpus: $(nproc)  load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "nginx: $(nginx -v 2>&1)"; echo "haproxy: $(haproxy -v | head -1)"; echo "wrk: $(wrk -v 2>&1 | head -1)"
  echo "python: $("$PY" -c 'import sys,uvloop,httptools;print(sys.version.split()[0],"uvloop",uvloop.__version__,"httptools",httptools.__version__)')"
  echo "pyk3s: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) $(git -C "$ROOT" status --short -- pyk3s/addons/ingress | wc -l) changed files in pyk3s/addons/ingress"
  [ -z "$BASELINE" ] || echo "pyk3s-base: $BASELINE $(git -C "$BASELINE" rev-parse --short HEAD 2>/dev/null)"
} | tee "$OUTDIR/versions.txt" >&2

# ------------------------------------------------------------------ backend (CPU 0 when pinned)
BACKEND_PORT=$(free_port)
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

# ------------------------------------------------------------------ per-scenario configs
# write_configs DIR NROUTES AUTH(0|1) PORT_NGINX PORT_HAPROXY
write_configs() {
  local dir=$1 n=$2 auth_on=$3 pn=$4 ph=$5 i a host auth_route
  mkdir -p "$dir"
  printf '%s\n' "$HTPASSWD" >"$dir/htpasswd"
  host="h$((n / 2)).example"; auth_route=$((n / 2)); [ "$auth_on" = 1 ] || auth_route=-1
  "$PY" - "$n" "$BACKEND_PORT" "$HTPASSWD" "$auth_route" >"$dir/objects.yaml" <<'EOF'
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
    echo "pid $dir/nginx.pid;"
    echo "error_log $dir/nginx-error.log warn;"
    echo "events { worker_connections 16384; }"
    echo "http {"
    echo "  access_log off; keepalive_requests 1000000; keepalive_timeout 60s;"
    echo "  client_body_temp_path $dir/p_body; proxy_temp_path $dir/p_proxy;"
    echo "  fastcgi_temp_path $dir/p_fcgi; uwsgi_temp_path $dir/p_uwsgi; scgi_temp_path $dir/p_scgi;"
    echo "  server_names_hash_max_size 4096; server_names_hash_bucket_size 64;"
    echo "  upstream be { server 127.0.0.1:$BACKEND_PORT; keepalive 512; keepalive_requests 1000000; }"
    echo "  server { listen 127.0.0.1:$pn default_server reuseport; return 404; }"
    for i in $(seq 0 $((n - 1))); do
      a=""
      [ "$i" = "$auth_route" ] && a="auth_basic \"traefik\"; auth_basic_user_file $dir/htpasswd;"
      echo "  server { listen 127.0.0.1:$pn; server_name h$i.example; location / { $a proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } }"
    done
    echo "}"
  } >"$dir/nginx.conf"
  {
    echo "global"; echo "  nbthread $WORKERS"; echo "  maxconn 8000"
    # glibc crypt(3) has no $apr1$: haproxy gets the same password as MD5-crypt ($1$), same cost class
    echo "userlist users"; echo "  user test password $MD5_HASH"
    echo "defaults"; echo "  mode http"; echo "  timeout connect 5s"; echo "  timeout client 60s"; echo "  timeout server 60s"
    echo "  option http-keep-alive"
    echo "frontend fe"; echo "  bind 127.0.0.1:$ph"
    [ "$auth_on" = 1 ] && echo "  http-request auth realm traefik if { hdr(host) -i $host } !{ http_auth(users) }"
    echo "  use_backend %[req.hdr(host),lower,map($dir/hosts.map,nohost)]"
    echo "backend nohost"; echo "  http-request deny deny_status 404"
    echo "backend be"; echo "  http-reuse always"; echo "  option forwardfor"; echo "  server s1 127.0.0.1:$BACKEND_PORT"
  } >"$dir/haproxy.cfg"
  for i in $(seq 0 $((n - 1))); do echo "h$i.example be"; done >"$dir/hosts.map"
  # every request a Host chosen at random among the routes; each wrk thread has its own fixed seed,
  # so every proxy gets the same sequence
  cat >"$dir/random.lua" <<LUA
local n, auth, counter = $n, "$(printf 'test:test' | base64)", 0
function setup(thread) counter = counter + 1; thread:set("seed", counter) end
function init(args) math.randomseed(seed * 7919) end
function request()
  return wrk.format("GET", "/", {Host = "h" .. math.random(0, n - 1) .. ".example",
                                 Authorization = "Basic " .. auth})
end
LUA
}

declare -A PID PORT
# start_proxy NAME DIR
start_proxy() {
  local s=$1 dir=$2
  case "$s" in
    nginx) start_bg "$dir/$s.log" "${TS_PROXY[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' ;;
    haproxy) start_bg "$dir/$s.log" "${TS_PROXY[@]}" haproxy -db -f "$dir/haproxy.cfg" ;;
    pyk3s) start_bg "$dir/$s.log" "${TS_PROXY[@]}" env PYTHONPATH="$ROOT" "$PY" -m pyk3s traefik \
             "--entryPoints.web.address=127.0.0.1:${PORT[$s]}" --providers.kubernetescrd \
             "--objects=$dir/objects.yaml" "--workers=$WORKERS" --log.level=ERROR ;;
    pyk3s-base) start_bg "$dir/$s.log" "${TS_PROXY[@]}" env PYTHONPATH="$BASELINE" "$PY" -m pyk3s traefik \
             "--entryPoints.web.address=127.0.0.1:${PORT[$s]}" --providers.kubernetescrd \
             "--objects=$dir/objects.yaml" "--workers=$WORKERS" --log.level=ERROR ;;
    ref) start_bg "$dir/$s.log" "${TS_PROXY[@]}" "$PY" "$PEERS/http/proxy_httptools.py" \
             --listen "127.0.0.1:${PORT[$s]}" --upstream "127.0.0.1:$BACKEND_PORT" --workers "$WORKERS" ;;
    *) die "unknown proxy $s" ;;
  esac
  PID[$s]=$LAST_PID
  wait_port "${PORT[$s]}" tcp 60 "$LAST_PID" "$dir/$s.log"
}

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# check NAME HOST AUTH_ON NROUTES : answers are right before any load
check() {
  local s=$1 host=$2 auth_on=$3 n=$4 url="http://127.0.0.1:${PORT[$1]}/" ok no want=401 h got
  [ "$auth_on" = 1 ] || want=200
  ok=$(code -H "Host: $host" -H "$AUTH" "$url"); no=$(code -H "Host: $host" "$url")
  [ "$ok" = 200 ] && [ "$no" = "$want" ] || die "$s: Host $host: expected 200/$want, got $ok/$no"
  [ "$s" = ref ] && return 0      # one catch-all route: no routing to check
  for h in h0.example "h$((n - 1)).example" "h$((RANDOM % n)).example"; do
    [ "$auth_on" = 1 ] && [ "$h" = "$host" ] && continue
    got=$(code -H "Host: $h" -H "$AUTH" "$url")
    [ "$got" = 200 ] || die "$s: Host $h: expected 200, got $got"
  done
  got=$(code -H "Host: nowhere.example" "$url")
  [ "$got" != 200 ] || die "$s: an unknown Host got 200"
}

# wrk_args SCENARIO HOST DIR : sets WRK_ARGS, what wrk sends (a Host header or the random-Host script)
wrk_args() {
  if [ "$1" = random ]; then WRK_ARGS=(-s "$3/random.lua"); else WRK_ARGS=(-H "Host: $2"); fi
}

# measure SCENARIO PROXY RUN HOST DIR : one wrk run; repeated (at most RETRIES times) when the machine was noisy
measure() {
  local scen=$1 s=$2 run=$3 host=$4 dir=$5 try f pc0 pu0 ps0 pc1 pu1 ps1 bc0 bc1 b0 b1 wt rps p50 p99 errs
  local load other usr_us sys_us pcpu
  for try in $(seq 1 $((RETRIES + 1))); do
    f="$OUTDIR/wrk-$scen-$s-r$run-t$try.txt"
    load=$(cut -d' ' -f1 /proc/loadavg)
    read -r pc0 pu0 ps0 < <(cpu_split "${PID[$s]}"); bc0=$(cpu_secs "$BACKEND_PID"); b0=$(busy_secs)
    wrk_args "$scen" "$host" "$dir"
    wt=$( { TIMEFORMAT='%U %S'; time "${TS_LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency \
            "${WRK_ARGS[@]}" -H "$AUTH" "http://127.0.0.1:${PORT[$s]}/" >"$f" 2>&1; } 2>&1 )
    read -r pc1 pu1 ps1 < <(cpu_split "${PID[$s]}"); bc1=$(cpu_secs "$BACKEND_PID"); b1=$(busy_secs)
    read -r rps p50 p99 errs < <("$SYSPY" "$PEERS/lib/parse.py" wrk "$f")
    # CPU used by anything but this proxy, the backend and wrk, as % of the whole machine
    other=$(awk -v b0="$b0" -v b1="$b1" -v p="$pc0 $pc1" -v bc="$bc0 $bc1" -v w="$wt" -v d="$DURATION" -v n="$(nproc)" \
      'BEGIN{split(p,P," "); split(bc,B," "); split(w,W," ");
             o=(b1-b0)-(P[2]-P[1])-(B[2]-B[1])-(W[1]+W[2]); if (o<0) o=0; printf "%.1f", 100*o/(d*n)}')
    if awk -v o="$other" -v m="$MAX_OTHER" 'BEGIN{exit !(o>m)}' && [ "$try" -le "$RETRIES" ]; then
      log "$scen/$s run $run: machine busy (other ${other}%, load $load), repeating"
      sleep 5
      continue
    fi
    break
  done
  pcpu=$(awk -v a="$pc0" -v b="$pc1" 'BEGIN{printf "%.2f", b-a}')
  read -r usr_us sys_us < <(awk -v r="$rps" -v d="$DURATION" -v u0="$pu0" -v u1="$pu1" -v s0="$ps0" -v s1="$ps1" \
    'BEGIN{n=r*d; if (n>0) printf "%.2f %.2f\n", (u1-u0)*1e6/n, (s1-s0)*1e6/n; else print "nan nan"}')
  for kv in "rps $rps" "p50_ms $p50" "p99_ms $p99" "errors $errs" "proxy_cpu_s $pcpu" "usr_us $usr_us" \
            "sys_us $sys_us" "load1 $load" "other_pct $other"; do
    # shellcheck disable=SC2086
    record ingress "$scen" "$s" "$run" $kv
  done
  log "$scen/$s run $run: $rps req/s p50=${p50}ms p99=${p99}ms errors=$errs cpu/req=${usr_us}+${sys_us}us load=$load other=${other}%"
}

for scen in "${SCEN[@]}"; do
  case "$scen" in
    one) n=1; auth_on=0 ;;
    routes|random) n=$ROUTES; auth_on=0 ;;
    auth) n=$ROUTES; auth_on=1 ;;
    *) die "unknown scenario $scen" ;;
  esac
  host="h$((n / 2)).example"
  dir="$BENCH_TMP/$scen"
  active=()
  for s in "${PROX[@]}"; do
    [ "$s" = ref ] && [ "$auth_on" = 1 ] && continue
    PORT[$s]=$(free_port); active+=("$s")
  done
  write_configs "$dir" "$n" "$auth_on" "${PORT[nginx]:-0}" "${PORT[haproxy]:-0}"
  for s in "${active[@]}"; do start_proxy "$s" "$dir"; done
  for s in "${active[@]}"; do
    check "$s" "$host" "$auth_on" "$n"
    # warm up: upstream keep-alive connections, credential caches, lazily built state
    wrk_args "$scen" "$host" "$dir"
    "${TS_LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d2s "${WRK_ARGS[@]}" -H "$AUTH" \
      "http://127.0.0.1:${PORT[$s]}/" >/dev/null 2>&1
  done
  log "scenario $scen: $n route(s), basicAuth $([ "$auth_on" = 1 ] && echo on || echo off), Host $([ "$scen" = random ] && echo "random per request" || echo "$host")"
  for run in $(seq 1 "$RUNS"); do
    for s in "${active[@]}"; do measure "$scen" "$s" "$run" "$host" "$dir"; done
  done
  for s in "${active[@]}"; do stop_pid "${PID[$s]}"; done
  unset PORT PID; declare -A PID PORT
  sleep 0.5
done
stop_pid "$BACKEND_PID"

# ------------------------------------------------------------------ report
"$PY" - "$RESULTS" "$MODE" "$WORKERS" "$THREADS" "$CONNS" "$DURATION" "$RUNS" "$ROUTES" <<'EOF' | tee "$OUTDIR/summary.md"
import statistics, sys
from collections import defaultdict
path, mode, workers, threads, conns, duration, runs, routes = sys.argv[1:]
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
title = {"one": "1 Host rule", "routes": f"{routes} routes, one Host",
         "random": f"{routes} routes, random Host per request",
         "auth": f"{routes} routes + basicAuth (pyk3s caches verified credentials)"}
print(f"\n## ingress proxies, {mode}, {workers} worker(s)/thread(s) each, wrk -t{threads} -c{conns} "
      f"-d{duration}s, median of {runs}\n")
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
    loads = vals[scen, proxy, "load1"]
    rr = vals[scen, proxy, "rps"]
    spread = (max(rr) - min(rr)) / rps * 100 if rr and rps else float("nan")
    print(f"| {title.get(scen, scen)} | {proxy} | {rps:,.0f} | ±{spread / 2:.0f}% | {p50:.2f} | {p99:.2f} | {errs} | "
          f"{usr:.1f}+{sys_:.1f} | {r_rps:.2f}x | {r_p99:.2f}x | {min(loads):.1f}-{max(loads):.1f} | "
          f"{med(scen, proxy, 'other_pct'):.1f} |")
    if proxy == "pyk3s":
        ok = r_rps >= 0.9 and r_p99 <= 1.5 and errs == 0
        verdicts.append(f"{title.get(scen, scen)}: {'PASS' if ok else 'FAIL'} "
                        f"(req/s {r_rps:.2f}x >= 0.9x, p99 {r_p99:.2f}x <= 1.5x, errors {errs})")
if verdicts:
    print("\npyk3s vs target: " + "; ".join(verdicts))
base = [(scen, med(scen, "pyk3s", "rps") / med(scen, "pyk3s-base", "rps"),
         med(scen, "pyk3s", "p99_ms") / med(scen, "pyk3s-base", "p99_ms"))
        for scen, proxy in order if proxy == "pyk3s-base" and vals[scen, "pyk3s", "rps"]]
if base:
    print("\npyk3s vs pyk3s-base: " + "; ".join(f"{title.get(s, s)}: req/s {r:.2f}x, p99 {p:.2f}x" for s, r, p in base))
EOF
log "raw wrk output and results.tsv in $OUTDIR"
