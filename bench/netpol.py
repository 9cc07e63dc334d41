"""NetworkPolicy cost on real packets and in the agent's CPU. Prints numbers and ratios; asserts nothing.

    sudo python bench/netpol.py                     # all three parts, 5 s per load run, 3 interleaved runs
    sudo python bench/netpol.py --duration 2 --runs 1 --parts datapath

1. **datapath** (one node, the e2e harness's server with its agent): pod-to-pod TCP throughput (iperf3)
   and new connections/s (wrk, ``Connection: close``, against nginx in the server pod) from a client
   pod, with no policy, with 1 policy (the server accepts the client only), and with 1,000 policies
   over 500 pods (10 namespaces; the server and client are selected by 100 policies each, the client
   is egress-isolated too). Rows are interleaved, ``--runs`` times, each run starting at the next row;
   medians, spread and the ratio to
   no policy are printed, with the CPU the server process (API, controllers, agent) used during the
   loads: before each load the server is given up to ``--settle`` seconds to go quiet (below
   ``--quiet`` of a core), so that a row measures the data path, not the control plane still
   digesting 1,000 new objects. Only the measured pods (and a sentinel) run: the other pods are API objects
   bound to nodes without an agent (addresses from 198.18.0.0/15, never sent to), so the node's
   policy sets hold all 500 addresses while the machine runs three pods. Each row's reachability is
   checked with real probes before its load.
2. **recompile**: the agent's allow index built from that cluster's 500 pods and 1,000 policies (as
   the agent on that node holds them): CPU for a full build plus the full table text, and for one pod's
   label change (index update, delta, nftables commands), median of 20 different pods.
3. **pathcost** (no cluster; :mod:`netpol_path`): the kernel's CPU per new-connection packet through
   the policy table of part 1's objects with no policy, 1 and 1,000 policies, in namespaces of its own;
   a CPU time, so a busy machine barely moves it.
4. **latency** (a 3-node cluster, ``pyk3s dev cluster``'s layout): a server and a client pod on every
   node, every client probing every server every 20 ms from its own network namespace; the time from
   starting ``kubectl apply`` of a deny policy to the last of the 9 pairs refused, and from ``kubectl
   delete`` to the last pair answering again, ``--latency-rounds`` times.

Everything runs on links and namespaces the script creates; everything it starts is stopped by PID and
the clusters are removed (``pyk3s killall`` scoped to their data dirs) on exit, also on failure or
Ctrl-C. Bounded: each load runs ``--duration`` seconds; waits time out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from cluster import Cluster  # noqa: E402 - the harnesses the end-to-end tests use
from pyk3s_server import ServerProcess  # noqa: E402

from pyk3s.agent.cni.podnet import netns_name  # noqa: E402

PROBE = ROOT / "tests" / "support" / "netpol_probe.py"
NAMESPACES = [f"bench-{i}" for i in range(10)]
NGINX_CONF = """worker_processes 1;
pid /run/pyk3s-bench/run/nginx.pid;
error_log stderr;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path /run/pyk3s-bench/run/body; proxy_temp_path /run/pyk3s-bench/run/proxy; fastcgi_temp_path /run/pyk3s-bench/run/fcgi;
  uwsgi_temp_path /run/pyk3s-bench/run/uwsgi; scgi_temp_path /run/pyk3s-bench/run/scgi;
  server { listen 80 reuseport; location / { return 200 "ok\\n"; } }
}
"""


def log(msg: str) -> None:
    print(f"[netpol] {msg}", file=sys.stderr, flush=True)


def wait(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(interval)
    raise TimeoutError(f"bench/netpol: timed out after {timeout:.0f}s waiting for {what}")


def in_pod(ns: str, argv: list[str], *, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], input=input, capture_output=True, text=True,
                          timeout=timeout)


def probe(ns: str, targets: list[list[Any]], timeout: float = 1.0) -> list[bool]:
    res = in_pod(ns, [sys.executable, str(PROBE), "--timeout", str(timeout)], input=json.dumps(targets))
    return json.loads(res.stdout or "[]") or [False] * len(targets)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) a process has used so far."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spread(values: list[float]) -> str:
    med = statistics.median(values)
    return f"{med:,.1f} (min {min(values):,.1f}, max {max(values):,.1f})"


# -- objects ------------------------------------------------------------------------------------------

def pod(ns: str, name: str, labels: dict[str, str], containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": containers, **spec}}


def real_pods() -> list[dict[str, Any]]:
    server = pod("bench-0", "srv", {"app": "srv", "tier": "t0"}, [
        {"name": "nginx", "image": "nginx", "command": ["nginx", "-c", "/run/pyk3s-bench/conf/nginx.conf", "-g", "daemon off;"],
         "ports": [{"name": "http", "containerPort": 80}],
         "volumeMounts": [{"name": "conf", "mountPath": "/run/pyk3s-bench/conf"}, {"name": "run", "mountPath": "/run/pyk3s-bench/run"}]},
        {"name": "iperf", "image": "iperf3", "command": ["iperf3", "-s", "-p", "5201"],
         "ports": [{"name": "iperf", "containerPort": 5201}]}],
        volumes=[{"name": "conf", "configMap": {"name": "nginx"}}, {"name": "run", "emptyDir": {}}])
    client = pod("bench-1", "cli", {"app": "cli", "tier": "t1"},
                 [{"name": "idle", "image": "busybox", "command": ["sleep", "3600"]}])
    sentinel = pod("bench-2", "sentinel", {"app": "sentinel", "tier": "t2"},
                   [{"name": "who", "image": "pyk3s/whoami", "args": ["--port", "8080"]}])
    return [server, client, sentinel]


def phantom_pods(count: int) -> list[tuple[dict[str, Any], str]]:
    """(pod, address) for the pods without a process: bound to nodes without an agent."""
    out = []
    for i in range(count):
        ns = NAMESPACES[i % len(NAMESPACES)]
        p = pod(ns, f"p{i}", {"app": f"a{i % 50}", "tier": f"t{i % 5}"},
                [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                  "ports": [{"name": "http", "containerPort": 8080}]}],
                nodeName=f"bench-phantom-{i % 9}",
                tolerations=[{"operator": "Exists", "effect": "NoExecute"}, {"operator": "Exists", "effect": "NoSchedule"}])
        out.append((p, f"198.18.{i // 250}.{i % 250 + 1}"))
    return out


def policies(count: int) -> list[dict[str, Any]]:
    """``count`` policies: the first lets the client reach the server; the last makes the client
    egress-isolated (it may reach the server only); the others are a mix over the 10 namespaces
    (selector peers, namespace peers, named ports, ranges, ipBlocks, egress rules); those of the
    server's and the client's namespaces all select them too."""
    def np(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"namespace": ns, "name": name}, "spec": spec}

    cli_peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "bench-1"}},
                "podSelector": {"matchLabels": {"app": "cli"}}}
    first = np("bench-0", "p0000-server-from-client", {
        "podSelector": {"matchLabels": {"app": "srv"}},
        "ingress": [{"from": [cli_peer], "ports": [{"port": "http"}, {"port": 5201}]}]})
    if count == 1:
        return [first]
    out = [first]
    for k in range(1, count - 1):
        ns = NAMESPACES[k % len(NAMESPACES)]
        if ns in ("bench-0", "bench-1"):  # each of these selects the server or the client
            sel = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["t0", "t1", f"t{k % 5}"]}]}
        else:
            sel = {"matchLabels": {"app": f"a{k % 50}"}}
        spec: dict[str, Any] = {"podSelector": sel, "ingress": [
            {"from": [{"namespaceSelector": {"matchLabels": {"team": f"t{k % 3}"}},
                       "podSelector": {"matchLabels": {"app": f"a{(k * 7) % 50}"}}},
                      {"podSelector": {"matchLabels": {"tier": f"t{k % 5}"}}}],
             "ports": [{"port": "http"}, {"port": 9000 + k % 100, "endPort": 9050 + k % 100}]},
            {"from": [{"ipBlock": {"cidr": f"172.{16 + k % 16}.0.0/16", "except": [f"172.{16 + k % 16}.{k % 256}.0/24"]}}],
             "ports": [{"port": 443}, {"port": 53, "protocol": "UDP"}]}]}
        if k % 4 == 0:
            spec["egress"] = [{"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}]},
                              {"to": [{"podSelector": {"matchLabels": {"app": f"a{k % 50}"}}}]}]
        out.append(np(ns, f"p{k:04d}", spec))
    out.append(np("bench-1", f"p{count - 1:04d}-client-egress", {
        "podSelector": {"matchLabels": {"app": "cli"}}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "bench-0"}},
                            "podSelector": {"matchLabels": {"app": "srv"}}}]}]}))
    return out


# -- part 1: the data path ---------------------------------------------------------------------------

class DataPath:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.srv = ServerProcess(agent=True, extra_args=["--disable", "traefik,servicelb,coredns"])
        self.ips: dict[str, str] = {}
        self.netns: dict[str, str] = {}
        self.present: set[tuple[str, str]] = set()
        self.all = policies(1000)

    async def _api(self, fn: Callable[[Any], Any]) -> Any:
        from pyk3s.client import Client

        async with Client.from_kubeconfig(self.srv.kubeconfig) as client:
            return await fn(client)

    def setup(self) -> None:
        t = time.monotonic()
        self.srv.start(timeout=90)
        docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": ns, "labels": {"team": f"t{i % 3}"}}}
                                      for i, ns in enumerate(NAMESPACES)]
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "bench-0", "name": "nginx"},
                     "data": {"nginx.conf": NGINX_CONF}})
        docs += [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"bench-phantom-{i}"},
                  "spec": {"taints": [{"key": "bench/phantom", "effect": "NoSchedule"}]}} for i in range(9)]
        self.srv.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
        self.srv.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                              "items": real_pods()}))
        asyncio.run(self._api(self._phantoms))

        def running() -> bool:
            items = json.loads(self.srv.kubectl("get", "pods", "-A", "-o", "json").out)["items"]
            for p in items:
                if p["metadata"]["name"] in ("srv", "cli", "sentinel") and p["status"].get("podIP") \
                        and p["status"].get("phase") == "Running":
                    self.ips[p["metadata"]["name"]] = p["status"]["podIP"]
                    self.netns[p["metadata"]["name"]] = netns_name(p["metadata"]["uid"])
            return len(self.ips) == 3
        wait(running, 120, "the measured pods running")
        wait(lambda: self.reach() == (True, True, True), 60, "nginx, iperf3 and the sentinel answering")
        log(f"cluster with 3 running pods and 497 pods on phantom nodes ready in {time.monotonic() - t:.1f}s")

    async def _phantoms(self, client: Any) -> None:
        pods = client.resource("v1", "pods")
        sem = asyncio.Semaphore(32)

        async def one(p: dict[str, Any], ip: str) -> None:
            async with sem:
                obj = await pods.create(p, p["metadata"]["namespace"])
                obj["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
                await pods.update_status(obj, p["metadata"]["namespace"])
        await asyncio.gather(*(one(p, ip) for p, ip in phantom_pods(497)))

    def reach(self) -> tuple[bool, bool, bool]:
        """(client -> server http, sentinel -> server http, client -> sentinel)."""
        a = probe(self.netns["cli"], [[self.ips["srv"], "TCP", 80], [self.ips["sentinel"], "TCP", 8080]])
        b = probe(self.netns["sentinel"], [[self.ips["srv"], "TCP", 80]])
        return a[0], b[0], a[1]

    async def _set(self, client: Any, want: list[dict[str, Any]]) -> None:
        res = client.resource("networking.k8s.io/v1", "networkpolicies")
        wanted = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in want}
        sem = asyncio.Semaphore(32)

        async def create(key: tuple[str, str]) -> None:
            async with sem:
                await res.create(wanted[key], key[0])

        async def delete(key: tuple[str, str]) -> None:
            async with sem:
                await res.delete(key[1], key[0])
        await asyncio.gather(*(delete(k) for k in self.present - wanted.keys()))
        # the last policy of a row goes last, so that its effect shows the agent has all before it
        keys = sorted(wanted.keys() - self.present, key=lambda k: k[1])
        await asyncio.gather(*(create(k) for k in keys[:-1]))
        for k in keys[-1:]:
            await create(k)
        self.present = set(wanted)

    def row(self, name: str) -> float:
        want = {"none": [], "one": self.all[:1], "thousand": self.all}[name]
        expect = {"none": (True, True, True), "one": (True, False, True), "thousand": (True, False, False)}[name]
        t = time.monotonic()
        asyncio.run(self._api(lambda c: self._set(c, want)))
        wait(lambda: self.reach() == expect, 120, f"row {name}: reachability {expect}", interval=0.1)
        return time.monotonic() - t

    def settle(self) -> float:
        """Wait (at most ``--settle`` s) until the server uses less than ``--quiet`` of a core over 0.5 s,
        after writing back dirty pages (the datastore's writes for 1,000 objects would otherwise be
        written back by the kernel during the loads)."""
        import os

        assert self.srv.proc is not None
        pid, t = self.srv.proc.pid, time.monotonic()
        os.sync()
        while time.monotonic() - t < self.args.settle:
            before = process_cpu(pid)
            time.sleep(0.5)
            if process_cpu(pid) - before < 0.5 * self.args.quiet:
                break
        return time.monotonic() - t

    def server_cpu(self, load: Callable[[], float]) -> tuple[float, float]:
        """(the load's result, the server's CPU during it as a share of one core)."""
        assert self.srv.proc is not None
        pid = self.srv.proc.pid
        c0, t0 = process_cpu(pid), time.monotonic()
        got = load()
        return got, (process_cpu(pid) - c0) / (time.monotonic() - t0)

    def iperf(self) -> float:
        d = self.args.duration
        res = in_pod(self.netns["cli"], ["iperf3", "-c", self.ips["srv"], "-p", "5201", "-t", str(d), "-J"],
                     timeout=d + 30)
        data = json.loads(res.stdout or "{}")
        if "end" not in data:
            raise RuntimeError(f"iperf3 failed: {data.get('error') or res.stderr}")
        return data["end"]["sum_received"]["bits_per_second"] / 1e9

    def conns(self) -> float:
        d = self.args.duration
        res = in_pod(self.netns["cli"], ["wrk", "-t1", f"-c{self.args.conns}", f"-d{d}s", "-H", "Connection: close",
                                         f"http://{self.ips['srv']}/"], timeout=d + 30)
        m = re.search(r"Requests/sec:\s+([\d.]+)", res.stdout)
        if not m:
            raise RuntimeError(f"wrk failed: {res.stdout}{res.stderr}")
        errors = re.search(r"Socket errors: (.*)|Non-2xx or 3xx responses: (\d+)", res.stdout)
        if errors:
            log(f"wrk: {errors.group(0)}")
        return float(m.group(1))

    def run(self) -> dict[str, dict[str, list[float]]]:
        rows = ("none", "one", "thousand")
        out: dict[str, dict[str, list[float]]] = {r: {"gbit": [], "conns": [], "apply_s": [], "settle_s": [],
                                                      "server_cpu": []} for r in rows}
        for n in range(self.args.runs):
            # each run starts at another row, so that no row always follows the same change
            for r in rows[n % 3:] + rows[:n % 3]:
                o = out[r]
                o["apply_s"].append(self.row(r))
                o["settle_s"].append(self.settle())
                gbit, cpu_a = self.server_cpu(self.iperf)
                conns, cpu_b = self.server_cpu(self.conns)
                o["gbit"].append(gbit)
                o["conns"].append(conns)
                o["server_cpu"].append((cpu_a + cpu_b) / 2 * 100)
                log(f"run {n + 1}/{self.args.runs} {r:>8}: {gbit:.2f} Gbit/s, {conns:,.0f} conns/s (policies in "
                    f"place after {o['apply_s'][-1]:.1f}s, server quiet {o['settle_s'][-1]:.1f}s later; server "
                    f"CPU during the loads {o['server_cpu'][-1]:.1f}% of a core)")
        return out

    def objects(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], str]:
        get = lambda *a: json.loads(self.srv.kubectl("get", *a, "-A", "-o", "json").out)["items"]  # noqa: E731
        return get("pods"), get("namespaces"), get("networkpolicies"), self.srv.node_name


def recompile(pods: list[dict[str, Any]], nss: list[dict[str, Any]], pols: list[dict[str, Any]], node: str
              ) -> dict[str, float]:
    """CPU of the agent's index and table text: a full build, and one pod's label change."""
    from pyk3s.agent.netpol.render import NetpolTable, delta_script, full_script
    from pyk3s.netpol import AllowIndex, namespace_info, parse_policy, pod_info

    table = NetpolTable("pyk3s-netpol-bench", "pkbbench")
    t = time.process_time()
    index = AllowIndex(node)
    for n in nss:
        index.set_namespace(namespace_info(n))
    for p in pols:
        index.set_policy(parse_policy(p))
    infos = [i for i in (pod_info(p) for p in pods) if i is not None]
    for i in infos:
        index.set_pod(i)
    text = full_script(table, index.state())
    index.mark_applied()
    full = time.process_time() - t
    changes: list[float] = []
    sizes: list[int] = []
    for n, info in enumerate(i for i in infos if i.name.startswith("p")):
        if n >= 20:
            break
        labels = {**info.labels, "app": f"a{(int(info.name[1:]) + 17) % 50}"}
        from dataclasses import replace
        t = time.process_time()
        index.set_pod(replace(info, labels=labels))
        script = delta_script(table, index.take_delta())
        changes.append(time.process_time() - t)
        sizes.append(script.count("\n"))
    groups = len(index.state().groups)
    return {"full_ms": full * 1000, "full_lines": text.count("\n"), "change_ms": statistics.median(changes) * 1000,
            "change_max_ms": max(changes) * 1000, "change_lines": statistics.median(sizes), "groups": groups,
            "pods": len(infos), "policies": len(pols)}


# -- part 3: apply-to-enforcement on 3 nodes ----------------------------------------------------------

def latency(args: argparse.Namespace) -> dict[str, list[float]]:
    cl = Cluster(nodes=3, server_args=("--disable", "traefik,servicelb,coredns"))
    out: dict[str, list[float]] = {"deny_from_start": [], "deny_from_return": [], "allow_from_start": []}
    try:
        t = time.monotonic()
        cl.start(timeout=180)
        docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}]
        for i, node in enumerate(cl.members):
            docs.append(pod("bench", f"srv-{i}", {"role": "srv"},
                            [{"name": "who", "image": "pyk3s/whoami", "args": ["--port", "8080"]}], nodeName=node.name))
            docs.append(pod("bench", f"cli-{i}", {"role": "cli"},
                            [{"name": "idle", "image": "busybox", "command": ["sleep", "3600"]}], nodeName=node.name))
        cl.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
        ips: dict[str, str] = {}
        netns: dict[str, str] = {}

        def running() -> bool:
            for p in json.loads(cl.kubectl("get", "pods", "-n", "bench", "-o", "json").out)["items"]:
                if p["status"].get("podIP") and p["status"].get("phase") == "Running":
                    ips[p["metadata"]["name"]] = p["status"]["podIP"]
                    netns[p["metadata"]["name"]] = netns_name(p["metadata"]["uid"])
            return len(ips) == 6
        wait(running, 180, "bench pods running on 3 nodes")
        targets = [[ips[f"srv-{i}"], "TCP", 8080] for i in range(3)]
        wait(lambda: all(all(probe(netns[f"cli-{i}"], targets)) for i in range(3)), 60, "every server answering")
        log(f"3-node cluster with a server and a client per node ready in {time.monotonic() - t:.1f}s")
        deny = json.dumps({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                           "metadata": {"namespace": "bench", "name": "deny-srv"},
                           "spec": {"podSelector": {"matchLabels": {"role": "srv"}}, "ingress": []}})
        per_round = 20.0
        for n in range(args.latency_rounds):
            watchers = [subprocess.Popen(["ip", "netns", "exec", netns[f"cli-{i}"], sys.executable, "-u", str(PROBE),
                                          "--watch", str(per_round), "--timeout", "1", "--interval", "0.02"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i in range(3)]
            for w in watchers:
                assert w.stdin is not None
                w.stdin.write(json.dumps(targets))
                w.stdin.close()
            time.sleep(1.5)
            t_apply = time.time()
            cl.kubectl("apply", "-f", "-", input=deny)
            t_returned = time.time()
            time.sleep(5)
            t_delete = time.time()
            cl.kubectl("delete", "networkpolicy", "-n", "bench", "deny-srv")
            events: list[dict[str, Any]] = []
            for w in watchers:
                assert w.stdout is not None
                out_text = w.stdout.read()  # the watcher exits after per_round seconds
                w.wait(timeout=30)
                events += [json.loads(ln) for ln in out_text.splitlines() if ln.strip()]
            if len(events) < 9:
                raise RuntimeError(f"latency: probes reported too little: {events}")
            # the last pair to flip decides "enforced on every node"
            denied = [e["t"] for e in events if not e["ok"] and t_apply <= e["t"] < t_delete]
            allowed = [e["t"] for e in events if e["ok"] and e["t"] >= t_delete]
            if len(denied) < 9 or len(allowed) < 9:
                seen = sorted((round(e["t"] - t_apply, 3), e["i"], e["ok"]) for e in events)
                raise RuntimeError(f"latency round {n}: not every pair flipped (denied {len(denied)}, "
                                   f"allowed {len(allowed)} of 9); delete at {t_delete - t_apply:.3f}s; {seen}\n"
                                   + "\n".join(ln for ln in cl.logs().splitlines() if "netpol" in ln or "=====" in ln))
            out["deny_from_start"].append(max(denied) - t_apply)
            out["deny_from_return"].append(max(denied) - t_returned)
            out["allow_from_start"].append(max(allowed) - t_delete)
            log(f"latency round {n + 1}: denied on all nodes {out['deny_from_start'][-1]:.3f}s after kubectl apply "
                f"started ({out['deny_from_return'][-1]:.3f}s after it returned); allowed again "
                f"{out['allow_from_start'][-1]:.3f}s after kubectl delete started")
        return out
    finally:
        cl.cleanup()


# -- main ---------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per load run (iperf3, wrk)")
    ap.add_argument("--runs", type=int, default=3, help="interleaved repeats of the three rows")
    ap.add_argument("--conns", type=int, default=16, help="wrk connections")
    ap.add_argument("--latency-rounds", type=int, default=5)
    ap.add_argument("--settle", type=float, default=20.0,
                    help="datapath: seconds a row waits at most for the server to go quiet before its loads")
    ap.add_argument("--quiet", type=float, default=0.05,
                    help="datapath: the server is quiet below this share of one core (over 0.5 s)")
    ap.add_argument("--path-packets", type=int, default=200_000, help="pathcost: SYNs per row and round")
    ap.add_argument("--path-rounds", type=int, default=9, help="pathcost: interleaved rounds (cheap; medians "
                    "of a few hundred ns need many)")
    ap.add_argument("--parts", default="datapath,recompile,pathcost,latency",
                    help="comma-separated: datapath, recompile, latency, pathcost")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up through the finally blocks
    parts = set(args.parts.split(","))
    results: dict[str, Any] = {}
    if parts & {"datapath", "recompile"}:
        dp = DataPath(args)
        try:
            dp.setup()
            if "datapath" in parts:
                results["datapath"] = dp.run()
            if "recompile" in parts:
                dp.row("thousand")
                results["recompile"] = recompile(*dp.objects())
        finally:
            dp.srv.cleanup()
    if "pathcost" in parts:
        import netpol_path

        results["pathcost"] = netpol_path.run(args.path_packets, args.path_rounds, log)
    if "latency" in parts:
        results["latency"] = latency(args)
    print()
    if "datapath" in results:
        d = results["datapath"]
        base_g, base_c = statistics.median(d["none"]["gbit"]), statistics.median(d["none"]["conns"])
        print("| policies | iperf3 Gbit/s | ratio | new conns/s | ratio | server CPU during loads |")
        print("|---|---|---|---|---|---|")
        for r, label in (("none", "none"), ("one", "1"), ("thousand", "1,000 over 500 pods")):
            g, c = d[r]["gbit"], d[r]["conns"]
            print(f"| {label} | {spread(g)} | {statistics.median(g) / base_g:.2f}x | {spread(c)} | "
                  f"{statistics.median(c) / base_c:.2f}x | {statistics.median(d[r]['server_cpu']):.1f}% of a core |")
    if "recompile" in results:
        r = results["recompile"]
        print(f"\nrecompile ({r['pods']} pods, {r['policies']} policies, {r['groups']} groups on the node): full build "
              f"{r['full_ms']:.0f} ms CPU ({r['full_lines']} lines of nft); one pod's label change "
              f"{r['change_ms']:.2f} ms CPU median, {r['change_max_ms']:.2f} ms max ({r['change_lines']:.0f} lines); "
              f"ratio {r['full_ms'] / r['change_ms']:.0f}x")
    if "pathcost" in results:
        import netpol_path

        print("\n" + netpol_path.report(results["pathcost"]))
    if "latency" in results:
        lat = results["latency"]
        print(f"\napply to enforcement on all 3 nodes: {spread([x * 1000 for x in lat['deny_from_start']])} ms from "
              f"starting kubectl apply, {spread([x * 1000 for x in lat['deny_from_return']])} ms after it returned; "
              f"delete to allowed again: {spread([x * 1000 for x in lat['allow_from_start']])} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
