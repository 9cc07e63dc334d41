#!/usr/bin/env bash
# Soak: the ingress, cluster DNS and the API server under steady load for a long time; memory must stay
# flat once warmed up.
#
#   bench/soak.sh [--duration 1800] [--interval 30] [--warmup 600] [--tolerance 1.0] [--routes 1000]
#                 [--dns-rate 5000] [--api-rate 20] [--only ingress,dns,api] [--out DIR]
#
# Starts a `pyk3s server` (API only, loopback), the ingress (`pyk3s traefik --kubeconfig` with the packaged
# Deployment's flags: dashboard, ping, Prometheus metrics; one worker; --routes IngressRoutes with Host rules to one nginx backend) and the DNS server (`pyk3s coredns
# --kubeconfig`, one worker, the packaged Corefile, 1,000 Services, forwarding to a local knot), all
# watching that API server. Load,
# all bounded by --duration: wrk -t1 -c64 with a random Host among the routes on every request; dnsperf
# at --dns-rate qps (A, SRV and search-path NXDOMAIN names); --api-rate ConfigMap updates/s plus a list
# of the IngressRoutes every 5 s, with a watch open. Answers are checked before the load. Every
# --interval seconds the resident memory (RSS, the process and its children) of each component is
# sampled. After --warmup, the samples are split in halves: a component FAILS when the largest RSS of
# the second half exceeds the largest of the first half by more than --tolerance MiB (memory still
# growing); the slope in MiB per 10 minutes is printed too. Exit 1 when any component fails. The warm-up
# must cover the caches that fill by design: the API server keeps the watch events of the last 2
# minutes (at most 5,000 per resource), SQLite's page caches (4 MiB for each of its 3 connections)
# fill as the log grows, and the log stops growing at the first compaction (after 5 minutes).
# --only runs a subset (e.g. `--only api`: the API server, its objects and its load, without the ingress,
# DNS and their peers); the others are not started and their columns read "-".
# Everything listens on 127.0.0.1; every process is stopped by PID and the temp dir removed on exit.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=bench/peers.sh
. "$HERE/peers.sh"
PY="${BENCH_PYTHON:-$ROOT/.venv/bin/python}"
DURATION=1800; INTERVAL=30; WARMUP=600; TOLERANCE=1.0; ROUTES=1000; DNS_RATE=5000; API_RATE=20; SERVICES=1000
ONLY=ingress,dns,api
OUTDIR="$PWD/bench-results/pyk3s-soak"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;; --interval) INTERVAL=$2; shift 2 ;; --warmup) WARMUP=$2; shift 2 ;;
    --tolerance) TOLERANCE=$2; shift 2 ;; --routes) ROUTES=$2; shift 2 ;; --dns-rate) DNS_RATE=$2; shift 2 ;;
    --api-rate) API_RATE=$2; shift 2 ;; --only) ONLY=$2; shift 2 ;; --out) OUTDIR=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;; *) die "unknown option $1" ;;
  esac
done
for c in ${ONLY//,/ }; do
  case "$c" in ingress|dns|api) ;; *) die "--only: unknown component $c (ingress, dns, api)" ;; esac
done
on() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }
need kubectl curl
if on ingress; then need nginx wrk; fi
if on dns; then need knotd dnsperf; fi
[ "$WARMUP" -lt "$DURATION" ] || die "--warmup must be shorter than --duration"
bench_tmp
mkdir -p "$OUTDIR"
# the components' logs outlive the temp dir
BENCH_CLEANUP_HOOKS+=("cp \"\$BENCH_TMP\"/*.log \"$OUTDIR\"/ 2>/dev/null")
free_port() { "$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
CPU="$SYSPY $PEERS/lib/proctree_cpu.py"
rss_mib() {
  local kib=0 p v
  for p in $($CPU --pids "$1"); do
    v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null); kib=$(( kib + ${v:-0} ))
  done
  awk -v k="$kib" 'BEGIN{printf "%.1f", k/1024}'
}

# backend: nginx answering 200 "ok"
BPORT=$(free_port)
if on ingress; then
cat >"$BENCH_TMP/backend.conf" <<EOF
worker_processes 1;
pid $BENCH_TMP/backend.pid;
error_log $BENCH_TMP/backend-error.log warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path $BENCH_TMP/b_body; proxy_temp_path $BENCH_TMP/b_proxy;
  fastcgi_temp_path $BENCH_TMP/b_fcgi; uwsgi_temp_path $BENCH_TMP/b_uwsgi; scgi_temp_path $BENCH_TMP/b_scgi;
  server { listen 127.0.0.1:$BPORT; location / { default_type text/plain; return 200 "ok"; } }
}
EOF
start_bg "$BENCH_TMP/backend.log" nginx -p "$BENCH_TMP" -c "$BENCH_TMP/backend.conf" -g 'daemon off;'
BACKEND_PID=$LAST_PID
wait_port "$BPORT" tcp 15 "$BACKEND_PID" "$BENCH_TMP/backend.log"
fi

# the API server
APORT=$(free_port); KC="$BENCH_TMP/kubeconfig.yaml"; : >"$BENCH_TMP/config.yaml"
start_bg "$BENCH_TMP/api.log" "$PY" -m pyk3s server --disable-agent --disable coredns,traefik,servicelb \
  --data-dir "$BENCH_TMP/data" --https-listen-port "$APORT" --bind-address 127.0.0.1 --write-kubeconfig "$KC" \
  --config "$BENCH_TMP/config.yaml" --service-cidr 10.96.0.0/16 --cluster-dns 10.96.0.10 --node-name pk-soak
API_PID=$LAST_PID
for _ in $(seq 1 300); do
  [ -f "$KC" ] && kubectl --kubeconfig "$KC" get --raw /readyz >/dev/null 2>&1 && break
  kill -0 "$API_PID" 2>/dev/null || { tail -20 "$BENCH_TMP/api.log" >&2; die "pyk3s server exited"; }
  sleep 0.2
done
k() { kubectl --kubeconfig "$KC" "$@"; }

# objects: CRDs, routes, the DNS data set
DPORT=$(free_port); HPORT=$(free_port); RPORT=$(free_port); MPORT=$(free_port); UPORT=$(free_port)
"$PY" "$HERE/soak_setup.py" "$BENCH_TMP/ing" --routes "$ROUTES" --backend-port "$BPORT" || die "soak_setup.py failed"
"$PY" "$HERE/dns_setup.py" "$BENCH_TMP/dns" --port "$DPORT" --health "$HPORT" --ready "$RPORT" --metrics "$MPORT" \
  --upstream "127.0.0.1:$UPORT" --services "$SERVICES" || die "dns_setup.py failed"
# the DNS server's upstream: a local stand-in (knot serving example.test), never the machine's resolver
if on dns; then
mkdir -p "$BENCH_TMP/up"
printf '%s\n' '$ORIGIN example.test.' '$TTL 300' '@ IN SOA ns.example.test. h.example.test. 1 7200 1800 86400 300' \
  '@ IN NS ns.example.test.' 'ns IN A 10.99.0.53' '* IN A 10.99.1.1' >"$BENCH_TMP/up/example.test.zone"
cat >"$BENCH_TMP/up/knot.conf" <<KNOT
server:
    rundir: "$BENCH_TMP/up"
    listen: 127.0.0.1@$UPORT
database:
    storage: "$BENCH_TMP/up/db"
control:
    listen: "$BENCH_TMP/up/knot.sock"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$BENCH_TMP/up"
    journal-content: none
    zonefile-sync: -1
zone:
  - domain: example.test
    file: "example.test.zone"
KNOT
start_bg "$BENCH_TMP/upstream.log" knotd -c "$BENCH_TMP/up/knot.conf"; UP_PID=$LAST_PID
wait_port "$UPORT" udp 20 "$UP_PID" "$BENCH_TMP/upstream.log"
fi

k apply -f "$BENCH_TMP/ing/crds.yaml" >/dev/null || die "CRDs"
for _ in $(seq 1 100); do k get ingressroutes >/dev/null 2>&1 && break; sleep 0.2; done
k create -f "$BENCH_TMP/ing/routes.yaml" >/dev/null || die "routes"
k create -f "$BENCH_TMP/dns/services.yaml" >/dev/null || die "services"
k create configmap soak-0 --from-literal=n=0 >/dev/null || die "configmap"
log "API: $ROUTES IngressRoutes, $SERVICES Services"

# the ingress and the DNS server, one worker each
IPORT=$(free_port); TPORT=$(free_port); XPORT=$(free_port)
# the packaged Traefik's flags (dashboard, ping, Prometheus metrics, both providers), on loopback ports, one worker
if on ingress; then
start_bg "$BENCH_TMP/ingress.log" "$PY" -m pyk3s traefik --kubeconfig "$KC" \
  "--entryPoints.web.address=127.0.0.1:$IPORT" "--entryPoints.traefik.address=127.0.0.1:$TPORT" \
  "--entryPoints.metrics.address=127.0.0.1:$XPORT" --api.dashboard=true --ping=true --metrics.prometheus=true \
  --metrics.prometheus.entrypoint=metrics --providers.kubernetescrd --providers.kubernetesingress \
  --workers=1 --log.level=ERROR
ING_PID=$LAST_PID
wait_port "$IPORT" tcp 60 "$ING_PID" "$BENCH_TMP/ingress.log"
fi
if on dns; then
start_bg "$BENCH_TMP/dns.log" env PYK3S_DNS_WORKERS=1 "$PY" -m pyk3s coredns -conf "$BENCH_TMP/dns/Corefile" --kubeconfig "$KC"
DNS_PID=$LAST_PID
wait_port "$DPORT" udp 30 "$DNS_PID" "$BENCH_TMP/dns.log"
fi

# answers before load
code() { curl -s -o /dev/null -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$IPORT/"; }
if on ingress; then
for _ in $(seq 1 300); do [ "$(code "h$((ROUTES - 1)).example")" = 200 ] && break; sleep 0.2; done
for h in h0.example "h$((ROUTES / 2)).example" "h$((ROUTES - 1)).example"; do
  [ "$(code "$h")" = 200 ] || die "ingress: Host $h does not answer 200"
done
[ "$(code nowhere.example)" = 404 ] || die "ingress: an unknown Host does not get 404"
fi
if on dns; then
for _ in $(seq 1 300); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RPORT/ready")" = 200 ] && break; sleep 0.2; done
"$PY" "$PEERS/dns/check_answers.py" "$DPORT" || die "dns: wrong answers"
"$SYSPY" "$PEERS/dns/gen_zone.py" "$BENCH_TMP/zone" --services "$SERVICES" --queries 20000 >/dev/null
fi
checked="API (readyz)"
if on ingress; then checked="ingress (routes, 404), $checked"; fi
if on dns; then checked="DNS (A, SRV, NXDOMAIN), $checked"; fi
log "answers checked: $checked"

# load, each bounded by DURATION
WRK_PID=""; DNSPERF_PID=""; API_LOAD_PID=""; ING_PID=${ING_PID:-}; DNS_PID=${DNS_PID:-}
if on ingress; then
start_bg "$OUTDIR/wrk.txt" wrk -t1 -c64 -d"${DURATION}s" --latency -s "$BENCH_TMP/ing/random.lua" "http://127.0.0.1:$IPORT/"
WRK_PID=$LAST_PID
fi
if on dns; then
start_bg "$OUTDIR/dnsperf.txt" dnsperf -s 127.0.0.1 -p "$DPORT" -d "$BENCH_TMP/zone/queries.txt" -c 4 -Q "$DNS_RATE" -l "$DURATION"
DNSPERF_PID=$LAST_PID
fi
if on api; then
# a file, not stdin: a background job's stdin is /dev/null
cat >"$BENCH_TMP/api_load.py" <<'APILOAD'
import asyncio, sys, time
from pyk3s.client import Client

kubeconfig, duration, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])

async def main() -> None:
    client = Client.from_kubeconfig(kubeconfig)
    cms = client.resource("v1", "configmaps")
    routes = client.resource("traefik.io/v1alpha1", "ingressroutes")
    end = time.monotonic() + duration
    updates = lists = errors = 0
    seen = 0

    async def watch() -> None:
        nonlocal seen
        async for _ev in cms.watch(namespace="default"):
            seen += 1

    watcher = asyncio.create_task(watch())
    next_list = 0.0
    cm = await cms.get("soak-0", namespace="default")
    try:
        while time.monotonic() < end:
            try:
                cm["data"] = {"n": str(updates)}
                cm = await cms.update(cm, namespace="default")     # carries the new resourceVersion
                updates += 1
                if time.monotonic() >= next_list:
                    await routes.list(namespace="default")
                    lists += 1
                    next_list = time.monotonic() + 5
            except Exception as err:  # noqa: BLE001 - counted and reported
                errors += 1
                print(f"api load: {err}", flush=True)
                cm = await cms.get("soak-0", namespace="default")
            await asyncio.sleep(1 / rate)
    finally:
        watcher.cancel()
        await client.close()
    print(f"api load: {updates} updates, {lists} lists, {seen} watch events, {errors} errors", flush=True)

asyncio.run(main())
APILOAD
start_bg "$OUTDIR/api-load.txt" "$PY" "$BENCH_TMP/api_load.py" "$KC" "$DURATION" "$API_RATE"
API_LOAD_PID=$LAST_PID
fi
rss_of() { if [ -n "$1" ]; then rss_mib "$1"; else printf -- -; fi; }

SAMPLES="$OUTDIR/rss.tsv"
printf 'seconds\tingress_mib\tdns_mib\tapi_mib\n' >"$SAMPLES"
start=$(date +%s)
log "soak for ${DURATION}s, RSS every ${INTERVAL}s (warm-up ${WARMUP}s); samples in $SAMPLES"
while :; do
  now=$(( $(date +%s) - start ))
  row=$(printf '%s\t%s\t%s\t%s' "$now" "$(rss_of "$ING_PID")" "$(rss_of "$DNS_PID")" "$(rss_of "$API_PID")")
  echo "$row" >>"$SAMPLES"
  log "t=${now}s RSS MiB ingress/dns/api: $(echo "$row" | cut -f2- | tr '\t' '/')"
  for pid in $ING_PID $DNS_PID $API_PID; do kill -0 "$pid" 2>/dev/null || die "a component (pid $pid) exited"; done
  if on ingress; then
    # what a Prometheus and a health check would read meanwhile
    curl -s -o /dev/null "http://127.0.0.1:$XPORT/metrics"; curl -s -o /dev/null "http://127.0.0.1:$TPORT/ping"
    curl -s -o /dev/null "http://127.0.0.1:$TPORT/api/http/routers?per_page=10"
  fi
  [ "$now" -ge "$DURATION" ] && break
  sleep "$INTERVAL"
done
for pid in $WRK_PID $DNSPERF_PID $API_LOAD_PID; do
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  stop_pid "$pid"
done
if on ingress; then
  "$SYSPY" "$PEERS/lib/parse.py" wrk "$OUTDIR/wrk.txt" | awk '{printf "wrk: %.0f req/s, p50 %s ms, p99 %s ms, errors %s\n", $1, $2, $3, $4}'
fi
if on dns; then
  "$SYSPY" "$PEERS/lib/parse.py" dnsperf "$OUTDIR/dnsperf.txt" | awk '{printf "dnsperf: %.0f qps, %s%% lost\n", $1, $4}'
fi
if on api; then tail -1 "$OUTDIR/api-load.txt"; fi
for pid in $ING_PID $DNS_PID $API_PID ${BACKEND_PID:-} ${UP_PID:-}; do stop_pid "$pid"; done

"$SYSPY" - "$SAMPLES" "$WARMUP" "$TOLERANCE" <<'VERDICT'
import sys
path, warmup, tol = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rows = [line.rstrip("\n").split("\t") for line in open(path)][1:]
after = [[float("nan") if x == "-" else float(x) for x in r] for r in rows if float(r[0]) >= warmup]
if len(after) < 4:
    sys.exit(f"only {len(after)} samples after the warm-up: run longer or sample more often")
half = len(after) // 2
failed = False
for col, name in ((1, "ingress"), (2, "dns"), (3, "api")):
    if after[0][col] != after[0][col]:  # "-": not run (--only)
        continue
    first, second = [r[col] for r in after[:half]], [r[col] for r in after[half:]]
    growth = max(second) - max(first)
    ts, vs = [r[0] for r in after], [r[col] for r in after]
    mt, mv = sum(ts) / len(ts), sum(vs) / len(vs)
    slope = sum((t - mt) * (v - mv) for t, v in zip(ts, vs)) / (sum((t - mt) ** 2 for t in ts) or 1) * 600
    ok = growth <= tol
    failed |= not ok
    print(f"{name:8s} {'PASS' if ok else 'FAIL'}: RSS {min(vs):.1f}-{max(vs):.1f} MiB after warm-up; second half's peak "
          f"{growth:+.1f} MiB over the first's (tolerance {tol} MiB); slope {slope:+.2f} MiB/10 min")
sys.exit(1 if failed else 0)
VERDICT
