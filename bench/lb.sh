#!/usr/bin/env bash
# ServiceLB benchmark: a pod (nginx answering `return 200` + iperf3 -s) behind a LoadBalancer Service,
# measured three ways in one run: through <node IP>:<LB port> (what ServiceLB publishes: kernel DNAT),
# straight to a pod address, and through haproxy in TCP mode on loopback forwarding to a pod.
# Prints iperf3 throughput and connections/s (wrk with "Connection: close") per path: the median of
# --runs runs, interleaved (servicelb, direct, haproxy, servicelb, ...) so background load hits every
# path alike, the spread (± half the range, % of the median) and the ratio to the direct path. The
# backend is nginx (C, 2 workers), not a Python server, so the path and not the backend sets the
# connection rate; its CPU share is printed so a saturated backend shows.
# Each path has an identical backend pod of its own: every path reaches its pod from the node's bridge
# address, so on one shared pod the TIME_WAIT entries one path leaves would refuse (PAWS) the SYNs of
# another path that land on the same 4-tuple with unrelated timestamps, an interference between the
# bench's own clients that no user of one path has. A path still meets its own earlier runs' TIME_WAIT
# entries, as its users do. Printed per path: SYNs the backend refused in TIME_WAIT (its netns'
# TcpExt PAWSTimewait), each costing the client a 1 s retransmit; load-independent evidence.
#
#   bench/lb.sh [--duration 5] [--conns 16] [--runs 3]
#
# Starts its own `pyk3s server` with the embedded agent (node address on a link of its own, Traefik and
# CoreDNS off) inside a network namespace of its own, pk-bench-lb-<pid>, where clients, haproxy and the
# cluster all run: other clusters on this machine (test clusters share the host's namespace) hook the
# same NAT points with the same mark, and one whose masquerade ran first would rewrite this cluster's
# packets. Needs root, nft, iperf3, wrk, haproxy. Every process it starts is stopped by PID; the
# cluster, its links, netns and nft tables are removed on exit, also on failure or Ctrl-C. Bounded: each
# measurement runs --duration seconds.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DURATION=5; CONNS=16; RUNS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "lb.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
for b in iperf3 wrk haproxy nginx nft ip; do
  command -v "$b" >/dev/null 2>&1 || { echo "lb.sh: missing binary: $b" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "lb.sh: needs root (pod networking)" >&2; exit 1; }
PY="${BENCH_PYTHON:-$ROOT/.venv/bin/python}"
NETNS="pk-bench-lb-$$"

DRIVER_PID=""
on_exit() {
  # The driver cleans up in its own finally; SIGTERM lets it run that.
  if [ -n "$DRIVER_PID" ] && kill -0 "$DRIVER_PID" 2>/dev/null; then
    kill -TERM "$DRIVER_PID" 2>/dev/null
    wait "$DRIVER_PID" 2>/dev/null
  fi
  # the nginx pod runs from the host's filesystem: its config and temp directories are ours to remove
  for p in servicelb direct haproxy; do
    rm -rf "/tmp/pk-bench-lb-$p-nginx.conf" "/tmp/pk-bench-lb-$p-nginx.pid" "/tmp/pk-bench-lb-$p-body" \
      "/tmp/pk-bench-lb-$p-proxy" "/tmp/pk-bench-lb-$p-fcgi" "/tmp/pk-bench-lb-$p-uwsgi" "/tmp/pk-bench-lb-$p-scgi"
  done
  ip netns del "$NETNS" 2>/dev/null
}
trap on_exit EXIT
trap 'exit 130' INT TERM

cd "$ROOT" || exit 1
ip netns add "$NETNS" && ip -n "$NETNS" link set lo up || { echo "lb.sh: cannot create netns $NETNS" >&2; exit 1; }
ip netns exec "$NETNS" env DURATION="$DURATION" CONNS="$CONNS" RUNS="$RUNS" \
  PYTHONPATH="$ROOT/tests/support${PYTHONPATH:+:$PYTHONPATH}" "$PY" - <<'EOF' &
import json, os, re, signal, statistics, subprocess, sys, tempfile, time
import yaml
from pyk3s_server import ServerProcess, free_port

DURATION, CONNS, RUNS = int(os.environ["DURATION"]), int(os.environ["CONNS"]), int(os.environ["RUNS"])
PATHS = ("servicelb", "direct", "haproxy")
# the backend: nginx inside each path's pod (its config written by the container itself); pods of the
# process runtime share the host's /tmp, so every path's files carry its name
NGINX_CONF = ("worker_processes 2; daemon off; pid /tmp/pk-bench-lb-{p}-nginx.pid; error_log stderr warn; "
              "events {{ worker_connections 8192; }} "
              "http {{ access_log off; client_body_temp_path /tmp/pk-bench-lb-{p}-body; "
              "proxy_temp_path /tmp/pk-bench-lb-{p}-proxy; fastcgi_temp_path /tmp/pk-bench-lb-{p}-fcgi; "
              "uwsgi_temp_path /tmp/pk-bench-lb-{p}-uwsgi; scgi_temp_path /tmp/pk-bench-lb-{p}-scgi; "
              "server {{ listen 8888 reuseport; location / {{ default_type text/plain; return 200 ok; }} }} }}")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
started: list[subprocess.Popen] = []


def log(msg: str) -> None:
    print(f"[lb.sh] {msg}", file=sys.stderr, flush=True)


def iperf(host: str, port: int) -> float:
    p = subprocess.run(["iperf3", "-c", host, "-p", str(port), "-t", str(DURATION), "-J"],
                       capture_output=True, text=True, timeout=DURATION + 20)
    data = json.loads(p.stdout or "{}")
    if "end" not in data:
        raise RuntimeError(f"iperf3 to {host}:{port} failed: {data.get('error') or p.stderr}")
    return data["end"]["sum_received"]["bits_per_second"] / 1e9


def conns_per_s(host: str, port: int) -> float:
    p = subprocess.run(["wrk", "-t", "1", "-c", str(CONNS), "-d", f"{DURATION}s", "-H", "Connection: close",
                        f"http://{host}:{port}/"], capture_output=True, text=True, timeout=DURATION + 20)
    m = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
    if not m:
        raise RuntimeError(f"wrk to {host}:{port} failed: {p.stdout}{p.stderr}")
    errors = re.search(r"Socket errors: (.*)", p.stdout)
    if errors:
        log(f"wrk {host}:{port}: socket errors {errors.group(1)}")
    return float(m.group(1))


def wait(pred, what: str, timeout: float = 90) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception:  # noqa: BLE001 - keep polling until the deadline
            pass
        time.sleep(0.3)
    raise TimeoutError(f"lb.sh: timed out waiting for {what}")


srv = ServerProcess(agent=True, extra_args=["--disable", "traefik,coredns"])
tmp = tempfile.mkdtemp(prefix="pyk3s-bench-lb-")
try:
    log(f"starting pyk3s server {srv.ident}")
    srv.start(timeout=60)
    wait(lambda: "True" in srv.kubectl("get", "node", srv.node_name, "-o",
                                       "jsonpath={.status.conditions[?(@.type=='Ready')].status}").out, "node Ready")
    web_port, iperf_port = free_port(), free_port()
    manifest = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"bench-{path}"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": f"bench-{path}"}},
                  "template": {"metadata": {"labels": {"app": f"bench-{path}"}}, "spec": {"containers": [
                      {"name": "nginx", "image": "pyk3s/whoami", "command": ["sh", "-c",
                       f"printf '%s' '{NGINX_CONF.format(p=path)}' >/tmp/pk-bench-lb-{path}-nginx.conf && "
                       f"exec nginx -c /tmp/pk-bench-lb-{path}-nginx.conf"],
                       "ports": [{"containerPort": 8888}]},
                      {"name": "iperf", "image": "pyk3s/whoami", "command": ["iperf3", "-s", "-p", "5201"],
                       "ports": [{"containerPort": 5201}]}]}}}}
        for path in PATHS
    ] + [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bench"},
         "spec": {"type": "LoadBalancer", "selector": {"app": "bench-servicelb"}, "ports": [
             {"name": "web", "port": web_port, "targetPort": 8888},
             {"name": "iperf", "port": iperf_port, "targetPort": 5201}]}},
    ]
    srv.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifest))
    node_ip = srv.node.ip
    wait(lambda: node_ip in srv.kubectl("get", "svc", "bench", "-o",
                                        "jsonpath={.status.loadBalancer.ingress[*].ip}").out, "EXTERNAL-IP")
    pod_ips: dict[str, str] = {}
    for path in PATHS:
        pod = wait(lambda path=path: [
            p for p in srv.kubectl("get", "pods", "-l", f"app=bench-{path}", "-o", "json").json()["items"]
            if p["status"].get("podIP") and all(c.get("ready") for c in p["status"].get("containerStatuses") or [{}])],
            f"{path} pod ready")[0]
        pod_ips[path] = pod["status"]["podIP"]
    pod_ip, hp_pod_ip = pod_ips["direct"], pod_ips["haproxy"]
    # answers before load: every path reaches its pod's nginx
    def body(url: str) -> str:
        return subprocess.run(["curl", "-sf", "-m", "2", url], capture_output=True, text=True).stdout
    wait(lambda: body(f"http://{node_ip}:{web_port}/") == "ok", "LB answers")
    wait(lambda: body(f"http://{pod_ip}:8888/") == "ok", "pod answers")
    hp_web, hp_iperf = free_port(), free_port()
    cfg = os.path.join(tmp, "haproxy.cfg")
    with open(cfg, "w") as fh:
        fh.write(f"""global
  maxconn 4096
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen web
  bind 127.0.0.1:{hp_web}
  server pod {hp_pod_ip}:8888
listen iperf
  bind 127.0.0.1:{hp_iperf}
  server pod {hp_pod_ip}:5201
""")
    hlog = open(os.path.join(tmp, "haproxy.log"), "wb")  # noqa: SIM115 - closed with the run
    started.append(subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=hlog, stderr=subprocess.STDOUT))
    try:
        wait(lambda: body(f"http://127.0.0.1:{hp_web}/") == "ok", "haproxy answers", timeout=20)
    except TimeoutError:
        log(open(os.path.join(tmp, "haproxy.log")).read())
        raise
    paths = {"servicelb": (node_ip, web_port, iperf_port), "direct": (pod_ip, 8888, 5201),
             "haproxy": ("127.0.0.1", hp_web, hp_iperf)}
    # each pod's nginx: its master (found by the config name only this script uses) and its workers
    nginx_pids: dict[str, list[int]] = {}
    for path in PATHS:
        masters = subprocess.run(["pgrep", "-f", f"pk-bench-lb-{path}-nginx.conf"], capture_output=True,
                                 text=True).stdout.split()
        nginx_pids[path] = [int(x) for m in masters for x in [m, *subprocess.run(
            ["pgrep", "-P", m], capture_output=True, text=True).stdout.split()]]
        if not nginx_pids[path]:
            raise RuntimeError(f"the {path} pod's nginx was not found")

    def paws_refused(path: str) -> int:
        """SYNs the backend's netns refused in TIME_WAIT because their timestamp was older (PAWS)."""
        with open(f"/proc/{nginx_pids[path][0]}/net/netstat") as fh:
            rows = [line.split() for line in fh if line.startswith("TcpExt:")]
        counters = dict(zip(rows[0][1:], rows[1][1:], strict=True))
        return int(counters.get("PAWSTimewait", 0))

    def backend_cpu(path: str) -> float:
        total = 0
        for pid in nginx_pids[path]:
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
        return total / os.sysconf("SC_CLK_TCK")

    gbps: dict[str, list[float]] = {name: [] for name in paths}
    cps: dict[str, list[float]] = {name: [] for name in paths}
    busy: dict[str, list[float]] = {name: [] for name in paths}
    refused: dict[str, int] = {name: 0 for name in paths}
    for run in range(1, RUNS + 1):
        for name, (host, web, ip_port) in paths.items():
            gbps[name].append(iperf(host, ip_port))
            c0, r0 = backend_cpu(name), paws_refused(name)
            cps[name].append(conns_per_s(host, web))
            busy[name].append((backend_cpu(name) - c0) / DURATION * 100)
            run_refused = paws_refused(name) - r0
            refused[name] += run_refused
            log(f"run {run} {name}: {gbps[name][-1]:.2f} Gbit/s, {cps[name][-1]:.0f} conn/s, "
                f"nginx {busy[name][-1]:.0f}% of a CPU, {run_refused} SYNs refused in TIME_WAIT")

    def med(v: list[float]) -> float:
        return statistics.median(v)

    def spread(v: list[float]) -> str:
        return f"±{(max(v) - min(v)) / 2 / med(v) * 100:.0f}%"

    d_gbps, d_cps = med(gbps["direct"]), med(cps["direct"])
    print(f"\nmedian of {RUNS} interleaved runs of {DURATION}s; spread = ± half the range")
    print(f"{'path':<10} {'Gbit/s':>8} {'spread':>7} {'ratio':>6} {'conn/s':>9} {'spread':>7} {'ratio':>6} "
          f"{'backend CPU %':>14} {'SYNs refused (PAWS)':>20}")
    for name in paths:
        print(f"{name:<10} {med(gbps[name]):>8.2f} {spread(gbps[name]):>7} {med(gbps[name]) / d_gbps:>5.2f}x "
              f"{med(cps[name]):>9.0f} {spread(cps[name]):>7} {med(cps[name]) / d_cps:>5.2f}x "
              f"{med(busy[name]):>14.0f} {refused[name]:>20}")
    sl_gbps, sl_cps = med(gbps["servicelb"]) / d_gbps, med(cps["servicelb"]) / d_cps
    ok = sl_gbps >= 0.95 and sl_cps >= 0.95
    print(f"servicelb vs direct: {sl_gbps:.2f}x throughput, {sl_cps:.2f}x conn/s: "
          f"{'meets' if ok else 'BELOW'} the 0.95x target (a ratio above 1 is noise: DNAT adds work)")
finally:
    for p in started:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    srv.cleanup()
    subprocess.run(["rm", "-rf", tmp])
    log("cleaned up")
EOF
DRIVER_PID=$!
wait "$DRIVER_PID"
RC=$?
DRIVER_PID=""
exit "$RC"
