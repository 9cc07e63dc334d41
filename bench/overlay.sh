#!/usr/bin/env bash
# Pod traffic between two nodes: iperf3 throughput and connections/s (wrk with "Connection: close" on
# whoami's /bench) from a pod on node 0 to a pod on node 1, through the VXLAN backend and through
# host-gw (nodes on one link in both clusters, so only the encapsulation differs), and node to node
# without any pod network (the direct path). Both clusters run at once; the paths are measured in
# interleaved rounds (rotating order) and the median of each is printed with its spread (min-max),
# then the ratios against the targets: VXLAN >= 0.8x host-gw, host-gw >= 0.95x direct.
# Every path gets the same clients and the same cores: on a machine with 2+ CPUs the client (iperf3 -c,
# wrk) runs on CPU 0 and the server (iperf3's server side through -A, the whoami processes through
# taskset) on CPU 1, whatever namespace they are in (--no-pin leaves placement to the scheduler).
# Next to the wall-clock figures it prints what load on the machine changes much less: CPU seconds per
# GB moved (client + server processes, iperf3's getrusage figures, which include the forwarding work
# the kernel does in their context) and TCP retransmissions. --hooks first counts, per path, how many
# netfilter hook passes each node's packets make (a counting table at every IPv4 hook of both nodes,
# one 100 MB iperf3 transfer): per data segment and per small packet (ACKs), which no load changes.
#
#   bench/overlay.sh [--duration 5] [--rounds 3] [--conns 16] [--no-pin] [--hooks]
#
# Starts two throwaway 2-node clusters (`pyk3s dev cluster` layout: node namespaces on underlay bridges
# of their own, no default route). Every answer is checked before the load. Needs root, nft, iperf3,
# wrk, taskset. Everything it starts is stopped by PID; clusters, links and namespaces are removed on
# exit, also on failure or Ctrl-C. Bounded: each measurement runs --duration seconds.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DURATION=5; ROUNDS=3; CONNS=16; PIN=1; HOOKS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --no-pin) PIN=0; shift ;;
    --hooks) HOOKS=1; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "overlay.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
for b in iperf3 wrk nft ip taskset; do
  command -v "$b" >/dev/null 2>&1 || { echo "overlay.sh: missing binary: $b" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "overlay.sh: needs root (network namespaces)" >&2; exit 1; }
PY="${BENCH_PYTHON:-$ROOT/.venv/bin/python}"

DRIVER_PID=""
on_exit() {
  if [ -n "$DRIVER_PID" ] && kill -0 "$DRIVER_PID" 2>/dev/null; then
    kill -TERM "$DRIVER_PID" 2>/dev/null
    wait "$DRIVER_PID" 2>/dev/null
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

cd "$ROOT" || exit 1
DURATION="$DURATION" ROUNDS="$ROUNDS" CONNS="$CONNS" PIN="$PIN" HOOKS="$HOOKS" PYTHONPATH="$ROOT/tests/support${PYTHONPATH:+:$PYTHONPATH}" \
  "$PY" - <<'EOF' &
import json, os, re, signal, statistics, subprocess, sys, time
import yaml
from cluster import Cluster
from pyk3s.agent.cni.podnet import netns_name

DURATION, ROUNDS, CONNS = int(os.environ["DURATION"]), int(os.environ["ROUNDS"]), int(os.environ["CONNS"])
# client on CPU 0, server on CPU 1 for every path (one CPU: nothing to choose)
CLIENT_CPU, SERVER_CPU = ("0", "1") if os.environ["PIN"] == "1" and (os.cpu_count() or 1) >= 2 else ("", "")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
started: list[subprocess.Popen] = []
WEB, IPERF = 8888, 5201


def log(msg: str) -> None:
    print(f"[overlay.sh] {msg}", file=sys.stderr, flush=True)


def pinned(argv: list[str]) -> list[str]:
    return ["taskset", "-c", CLIENT_CPU, *argv] if CLIENT_CPU else argv


def pin_server(pids: list[int]) -> None:
    """The server side of a path on SERVER_CPU (every thread of each process)."""
    for pid in pids if SERVER_CPU else []:
        subprocess.run(["taskset", "-a", "-p", "-c", SERVER_CPU, str(pid)], capture_output=True)  # gone: nothing to pin


def iperf(prefix: list[str], host: str) -> tuple[float, float, int]:
    """(Gbit/s, CPU seconds per GB of client and server together, retransmissions)."""
    affinity = ["-A", f"{CLIENT_CPU},{SERVER_CPU}"] if CLIENT_CPU else []
    p = subprocess.run([*prefix, "iperf3", "-c", host, "-p", str(IPERF), "-t", str(DURATION), *affinity, "-J"],
                       capture_output=True, text=True, timeout=DURATION + 30)
    data = json.loads(p.stdout or "{}")
    if "end" not in data:
        raise RuntimeError(f"iperf3 to {host} failed: {data.get('error') or p.stderr}")
    got, cpu = data["end"]["sum_received"], data["end"]["cpu_utilization_percent"]
    cpu_s = (cpu["host_total"] + cpu["remote_total"]) / 100 * got["seconds"]
    return got["bits_per_second"] / 1e9, cpu_s / (got["bytes"] / 1e9), int(data["end"]["sum_sent"].get("retransmits", 0))


def conns_per_s(prefix: list[str], host: str) -> float:
    p = subprocess.run([*prefix, *pinned(["wrk", "-t", "1", "-c", str(CONNS), "-d", f"{DURATION}s", "-H", "Connection: close",
                        f"http://{host}:{WEB}/bench"])], capture_output=True, text=True, timeout=DURATION + 30)
    m = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
    if not m:
        raise RuntimeError(f"wrk to {host} failed: {p.stdout}{p.stderr}")
    errors = re.search(r"Socket errors: (.*)", p.stdout)
    if errors:
        log(f"wrk {host}: socket errors {errors.group(1)}")
    return float(m.group(1))


HOOK_NAMES = ("prerouting", "input", "forward", "output", "postrouting")
COUNT_TABLE = "pyk3s-bench-hooks"


def hook_passes(c: Cluster, prefix: list[str], host: str) -> dict[str, dict[str, int]]:
    """Netfilter hook passes of one 100 MB transfer, per node and hook: TCP packets over 1,000 bytes
    (data; VXLAN's outer UDP packets too) and the others (mostly ACKs), counted by a table of our own at priority -300 on each hook."""
    chains = "\n".join(f"  chain c-{h} {{ type filter hook {h} priority -300; policy accept;\n"
                       f"    meta length > 1000 counter\n    meta length <= 1000 counter\n  }}"
                       for h in HOOK_NAMES)
    for m in c.members[:2]:
        subprocess.run(c.in_node(m, "nft", "-f", "-"), input=f"table inet {COUNT_TABLE} {{\n{chains}\n}}\n",
                       text=True, check=True, capture_output=True)
    try:
        p = subprocess.run([*prefix, "iperf3", "-c", host, "-p", str(IPERF), "-n", "100M", "-J"],
                           capture_output=True, text=True, timeout=120)
        if "end" not in json.loads(p.stdout or "{}"):
            raise RuntimeError(f"iperf3 -n to {host} failed: {p.stderr}")
        out: dict[str, dict[str, int]] = {}
        for i, m in enumerate(c.members[:2]):
            rules = json.loads(subprocess.run(c.in_node(m, "nft", "-j", "list", "table", "inet", COUNT_TABLE),
                                              capture_output=True, text=True, check=True).stdout)["nftables"]
            seen: dict[str, int] = {}
            for r in (x["rule"] for x in rules if "rule" in x):
                hook = r["chain"][2:]
                kind = "data" if seen.get(hook) is None else "small"
                seen[hook] = 1
                packets = next(e["counter"]["packets"] for e in r["expr"] if "counter" in e)
                out.setdefault(f"node{i}", {})[f"{hook}.{kind}"] = packets
        return out
    finally:
        for m in c.members[:2]:
            subprocess.run(c.in_node(m, "nft", "delete", "table", "inet", COUNT_TABLE), capture_output=True)


def print_hooks(counts: dict[str, dict[str, dict[str, int]]]) -> None:
    print("netfilter hook passes per packet (one 100 MB transfer; data = packets over 1,000 bytes)")
    for name, nodes in counts.items():
        for kind in ("data", "small"):
            sent = max(max(n.get(f"output.{kind}", 0), n.get(f"forward.{kind}", 0)) for n in nodes.values()) or 1
            row = "  ".join(f"{node}: " + " ".join(f"{h[:4]} {n.get(f'{h}.{kind}', 0) / sent:.2f}" for h in HOOK_NAMES)
                            for node, n in nodes.items())
            print(f"  {name:<8} {kind:<5} ({sent:>5} packets)  {row}")


def pods_of(c: Cluster) -> tuple[list[str], str]:
    """Start the server and client pods, the server's processes pinned; (the client pod's netns prefix,
    the server pod's IP)."""
    manifest = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench-srv", "labels": {"app": "bench"}},
         "spec": {"nodeSelector": {"kubernetes.io/hostname": c.members[1].name}, "containers": [
             {"name": "whoami", "image": "pyk3s/whoami", "args": ["--port", str(WEB)]},
             {"name": "iperf", "image": "pyk3s/whoami", "command": ["iperf3", "-s", "-p", str(IPERF)]}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench-cli"},
         "spec": {"nodeSelector": {"kubernetes.io/hostname": c.members[0].name}, "containers": [
             {"name": "idle", "image": "pyk3s/whoami", "args": ["--port", "9999"]}]}}]
    c.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifest))

    def running() -> dict | None:
        pods = {p["metadata"]["name"]: p for p in c.kubectl("get", "pods", "-o", "json").json()["items"]}
        ok = all(p["status"].get("podIP") and all(s.get("ready") for s in p["status"].get("containerStatuses") or [{}])
                 for p in pods.values())
        return pods if ok and len(pods) == 2 else None
    pods = c.wait_for(running, timeout=90, what="bench pods running")
    srv_ns = netns_name(pods["bench-srv"]["metadata"]["uid"])
    pin_server([int(pid) for pid in subprocess.run(["ip", "netns", "pids", srv_ns], capture_output=True, text=True,
                                                    check=True).stdout.split()])
    return ["ip", "netns", "exec", netns_name(pods["bench-cli"]["metadata"]["uid"])], pods["bench-srv"]["status"]["podIP"]


clusters: list[Cluster] = []
try:
    paths: dict[str, tuple[list[str], str]] = {}
    for backend in ("vxlan", "host-gw"):
        c = Cluster(nodes=2, server_args=("--disable", "traefik,servicelb,coredns", "--flannel-backend", backend))
        clusters.append(c)
        log(f"starting a 2-node {backend} cluster ({c.bridge})")
        c.start(timeout=120)
        paths[backend] = pods_of(c)
    # the direct path: node 0 to node 1 of the VXLAN cluster over their shared link, no pod network
    vx = clusters[0]
    for argv in (["iperf3", "-s", "-p", str(IPERF)], [sys.executable, "-m", "pyk3s", "whoami", "--port", str(WEB)]):
        started.append(subprocess.Popen(vx.in_node(vx.members[1], *argv), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True))
    time.sleep(0.5)   # the direct path's servers: pinned as the pods' are, children (nsenter's exec) included
    pin_server([p.pid for p in started])
    paths["direct"] = (vx.in_node(vx.members[0]), vx.members[1].ip)
    for name, (prefix, host) in paths.items():   # answers checked before any load
        out = vx.wait_for(lambda p=prefix, h=host: subprocess.run([*p, "curl", "-sS", "-m", "2", f"http://{h}:{WEB}/"],
                                                                 capture_output=True, text=True).stdout,
                          timeout=60, what=f"{name} answers")
        if "Hostname:" not in out:
            raise RuntimeError(f"{name}: unexpected answer {out!r}")
    order = list(paths)
    if os.environ["HOOKS"] == "1":
        owner = {"vxlan": clusters[0], "host-gw": clusters[1], "direct": vx}
        print_hooks({n: hook_passes(owner[n], *paths[n]) for n in order})
    gbps: dict[str, list[float]] = {n: [] for n in order}
    cpu_gb: dict[str, list[float]] = {n: [] for n in order}
    retrans: dict[str, list[int]] = {n: [] for n in order}
    cps: dict[str, list[float]] = {n: [] for n in order}
    for r in range(ROUNDS):
        for name in order[r % len(order):] + order[:r % len(order)]:
            prefix, host = paths[name]
            log(f"round {r + 1}/{ROUNDS}: {name} ({host})")
            rate, cpu, lost = iperf(prefix, host)
            gbps[name].append(rate)
            cpu_gb[name].append(cpu)
            retrans[name].append(lost)
            cps[name].append(conns_per_s(prefix, host))
    med = {n: (statistics.median(gbps[n]), statistics.median(cps[n]), statistics.median(cpu_gb[n])) for n in order}
    where = f"client CPU {CLIENT_CPU}, server CPU {SERVER_CPU}" if CLIENT_CPU else "not pinned"
    print(f"{'path':<9} {'iperf3 Gbit/s':>14} {'spread':>13} {'CPU s/GB':>9} {'spread':>11} {'retr':>6} "
          f"{'conn/s':>9} {'spread':>13}  (median of {ROUNDS} rounds, {where})")
    for n in order:
        print(f"{n:<9} {med[n][0]:>14.2f} {min(gbps[n]):>6.2f}-{max(gbps[n]):<6.2f} {med[n][2]:>9.3f} "
              f"{min(cpu_gb[n]):>5.3f}-{max(cpu_gb[n]):<5.3f} {sum(retrans[n]):>6} {med[n][1]:>9.0f} "
              f"{min(cps[n]):>6.0f}-{max(cps[n]):<6.0f}")
    for a, b, target in (("vxlan", "host-gw", 0.8), ("host-gw", "direct", 0.95)):
        tr, cr, cpur = med[a][0] / med[b][0], med[a][1] / med[b][1], med[a][2] / med[b][2]
        verdict = "meets" if tr >= target else "BELOW"
        print(f"{a} / {b}: throughput {tr:.2f}x ({verdict} the {target}x target), connections/s {cr:.2f}x, "
              f"CPU per GB {cpur:.2f}x")
finally:
    for p in started:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    for c in clusters:
        c.cleanup()
    log("cleaned up")
EOF
DRIVER_PID=$!
wait "$DRIVER_PID"
RC=$?
DRIVER_PID=""
exit "$RC"
