"""Pods and the Service proxy on a real `pyk3s server` with its embedded agent. Prints numbers; asserts nothing.

    sudo python bench/pods.py                 # 10 replicas, 5 s per load row
    sudo python bench/pods.py --replicas 20 --seconds 3 --connections 32
    sudo python bench/pods.py --runtimes-only --runtimes process --repeats 3 --stages   # pod start only

Starts its own server the way the end-to-end harness does (a node link ``pkd<id>`` of its own, a pod
bridge ``pkb<id>``, CIDRs no other cluster on the machine routes), then:

1. time from ``kubectl apply`` of an N-replica whoami Deployment + Service to N ready endpoints in the
   Service's EndpointSlices (and to N Running pods);
1b. per runtime (the process runtime and, when ``containerd`` is installed, containerd through CRI):
   time from ``kubectl apply`` of an N-replica Deployment to N ready endpoints, the image already present,
   in interleaved repeats (``--repeats``). Both run the same program, busybox ``httpd`` without a readiness
   probe (a probe's period would be the same fixed delay in both): the process runtime runs the node's
   static busybox, containerd an image of it that the bench builds and loads through the air-gap folder.
   Each round checks that a request through the Service is answered before the Deployment goes. The end
   is the moment a watch on the EndpointSlices sees the N-th ready endpoint (not a ``kubectl`` poll, whose
   own start-up would blur it); ``kubectl apply`` runs with a warm discovery cache, as a user's does.
   ``--stages`` adds when the ReplicaSet, the pods (created, bound, IP, running, ready) and the endpoints
   were first seen, first pod and N-th pod, per runtime: where the time goes.
2. HTTP keep-alive throughput and new connections/s against one pod through its ClusterIP (the
   nftables DNAT path) and against an identical pod at its address directly, side by side with the
   ratio; plus the ClusterIP in front of all N pods. Each path has a pod of its own: both reach their
   pod from the node's bridge address, so on one pod the TIME_WAIT entries the direct row leaves would
   refuse (PAWS) the ClusterIP row's SYNs that land on the same 4-tuple with unrelated timestamps, an
   interference between the bench's own clients. The SYNs each pod refused that way are printed. With
   ``wrk`` installed it drives the load, else a bounded Python loop does.

Runs in a network namespace of its own, ``pk-bench-pods-<pid>`` (``--shared-netns``: the current one).
Everything is removed at the end (``pyk3s killall`` for this server, the node link, the data dir, the
namespace), also on failure or Ctrl-C, and what is left of it is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from images import busybox_image  # noqa: E402 - the test images
from pyk3s_server import ServerProcess  # noqa: E402 - the harness the end-to-end tests use

from pyk3s.agent.cni.podnet import netns_name  # noqa: E402 - where a pod's counters are read

sys.path.insert(0, str(Path(__file__).resolve().parent))
from podtrace import StageTrace  # noqa: E402 - the stage breakdown

RUNTIME_IMAGE = "pyk3s.test/bench-httpd:1"
BUSYBOX = "/bin/busybox"

# one Deployment per runtime and repeat; runtimeClassName pins the runtime
RUNTIME_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: %(name)s}
spec:
  replicas: %(replicas)d
  selector: {matchLabels: {app: %(name)s}}
  template:
    metadata: {labels: {app: %(name)s}}
    spec:
      terminationGracePeriodSeconds: 1
      runtimeClassName: %(runtime_class)s
      containers:
      - name: httpd
        image: %(image)s
        imagePullPolicy: IfNotPresent
        command: [%(busybox)s, "httpd", "-f", "-p", "8080", "-h", "/etc"]
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: %(name)s}
spec:
  selector: {app: %(name)s}
  ports: [{port: 80, targetPort: 8080}]
"""
RUNTIMES = {"process": ("pyk3s-process", "pyk3s/whoami", BUSYBOX), "containerd": ("runc", RUNTIME_IMAGE, "busybox")}

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: bench}
spec:
  replicas: %(replicas)d
  selector: {matchLabels: {app: bench}}
  template:
    metadata: {labels: {app: bench}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: whoami
        image: traefik/whoami
        args: ["--port", "8080"]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /health, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: bench}
spec:
  selector: {app: bench}
  ports: [{port: 80, targetPort: 8080}]
"""

# two identical pods: one behind the ClusterIP, one reached directly, so neither path meets the other's
# TIME_WAIT entries
SOLO_POD = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s, labels: {app: %(name)s}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: whoami
    image: traefik/whoami
    args: ["--port", "8080"]
    readinessProbe: {httpGet: {path: /health, port: 8080}, periodSeconds: 1}
"""

SOLO = SOLO_POD % {"name": "solo"} + "---" + SOLO_POD % {"name": "solo-direct"} + """---
apiVersion: v1
kind: Service
metadata: {name: solo}
spec:
  selector: {app: solo}
  ports: [{port: 80, targetPort: 8080}]
"""


def ready_endpoints(srv: ServerProcess, service: str) -> int:
    out = srv.kubectl("get", "endpointslices", "-l", f"kubernetes.io/service-name={service}", "-o", "json",
                      check=False)
    if out.rc != 0:
        return 0
    return sum(1 for s in json.loads(out.out)["items"] for e in s.get("endpoints") or []
               if (e.get("conditions") or {}).get("ready"))


def running_pods(srv: ServerProcess, selector: str) -> int:
    out = srv.kubectl("get", "pods", "-l", selector, "-o", "jsonpath={.items[*].status.phase}", check=False).out
    return out.split().count("Running")


def wait(predicate, timeout: float, what: str, interval: float = 0.05) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic()
        time.sleep(interval)
    raise TimeoutError(f"bench/pods: timed out after {timeout:.0f}s waiting for {what}")


# -- load ------------------------------------------------------------------------------------------------

def wrk(url: str, seconds: float, connections: int, close: bool) -> float:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--timeout", "2s"]
    if close:
        argv += ["-H", "Connection: close"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 30).stdout
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errors:
        print(f"    (wrk {url}: {errors.group(0)})")
    return float(m.group(1)) if m else 0.0


def python_load(host: str, port: int, seconds: float, connections: int, close: bool) -> float:
    """Bounded fallback: ``connections`` threads, each one HTTP/1.1 client, for ``seconds``."""
    req = (f"GET / HTTP/1.1\r\nHost: {host}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n").encode()
    done = [0] * connections
    deadline = time.monotonic() + seconds

    def one_response(sock: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        m = re.search(rb"[Cc]ontent-[Ll]ength: (\d+)", head)
        need = int(m.group(1)) if m else 0
        while len(body) < need:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            body += chunk
        return True

    def worker(i: int) -> None:
        sock = None
        while time.monotonic() < deadline:
            try:
                if sock is None:
                    sock = socket.create_connection((host, port), timeout=2)
                sock.sendall(req)
                if one_response(sock):
                    done[i] += 1
                if close:
                    sock.close()
                    sock = None
            except OSError:
                if sock is not None:
                    sock.close()
                sock = None
        if sock is not None:
            sock.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 10)
    return sum(done) / seconds


def measure(host: str, port: int, seconds: float, connections: int, close: bool) -> float:
    if shutil.which("wrk"):
        return wrk(f"http://{host}:{port}/", seconds, connections, close)
    return python_load(host, port, seconds, min(connections, 16), close)


# -- main ------------------------------------------------------------------------------------------------

def paws_refused(srv: ServerProcess, pod: str) -> int | None:
    """SYNs the pod's netns refused in TIME_WAIT because their timestamp was older (PAWS): each costs the
    client a 1 s retransmit. None when the counter cannot be read."""
    uid = srv.kubectl("get", "pod", pod, "-o", "jsonpath={.metadata.uid}", check=False).out.strip()
    out = subprocess.run(["ip", "netns", "exec", netns_name(uid), "cat", "/proc/net/netstat"],
                         capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines() if line.startswith("TcpExt:")]
    if len(rows) < 2 or "PAWSTimewait" not in rows[0]:
        return None
    return int(rows[1][rows[0].index("PAWSTimewait")])


def leftovers(srv: ServerProcess) -> list[str]:
    left = []
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    for name in (srv.bridge, f"pkd{srv.ident}"):
        if f" {name}:" in links or f" {name}@" in links:
            left.append(f"link {name}")
    if srv.nft_table in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.split():
        left.append(f"nft table {srv.nft_table}")
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if str(srv.data_dir).encode() in (d / "cmdline").read_bytes():
                    left.append(f"process {d.name}")
            except OSError:
                continue
    return left


def apply(srv: ServerProcess, manifest: str) -> None:
    """``kubectl apply`` as a user runs it: with the discovery cache of the calls before (the harness's
    ``kubectl`` starts each call with an empty one)."""
    cmd = ["kubectl", "--kubeconfig", str(srv.kubeconfig), "--cache-dir", str(srv.tmp / "kcache"), "apply", "-f", "-"]
    p = subprocess.run(cmd, input=manifest, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"kubectl apply failed ({p.returncode}): {p.stderr}")


def runtime_rows(srv: ServerProcess, runtimes: list[str], n: int, repeats: int, timeout: float,
                 show_stages: bool) -> None:
    times: dict[str, list[float]] = {r: [] for r in runtimes}
    stages: dict[str, dict[str, list[tuple[float, float]]]] = {r: {} for r in runtimes}
    trace = StageTrace(str(srv.kubeconfig))
    subprocess.run(["kubectl", "--kubeconfig", str(srv.kubeconfig), "--cache-dir", str(srv.tmp / "kcache"),
                    "api-resources"], capture_output=True, timeout=60)  # fills the discovery cache
    try:
        for i in range(repeats):
            for rt in runtimes if i % 2 == 0 else reversed(runtimes):  # interleaved, order alternating
                rc, image, busybox = RUNTIMES[rt]
                name = f"rt-{rt}-{i}"
                trace.begin(name, n)
                t0 = time.monotonic()
                apply(srv, RUNTIME_DEPLOYMENT % {"name": name, "replicas": n, "runtime_class": rc, "image": image,
                                                 "busybox": json.dumps(busybox)})
                t_applied = time.monotonic()
                t = trace.wait_ready(timeout)
                times[rt].append(t - t0)
                for label, first, last in [("kubectl apply", 0.0, t_applied - t0), *trace.stages(t0)]:
                    stages[rt].setdefault(label, []).append((first, last))
                assert ready_endpoints(srv, name) >= n, f"{rt}: the watch saw {n} ready endpoints, kubectl does not"
                ids = srv.kubectl("get", "pods", "-l", f"app={name}", "-o",
                                  "jsonpath={.items[*].status.containerStatuses[*].containerID}").out.split()
                want = "containerd://" if rt == "containerd" else "pyk3s://"
                assert len(ids) == n and all(x.startswith(want) for x in ids), f"{rt} pods ran elsewhere: {ids}"
                ip = srv.kubectl("get", "svc", name, "-o", "jsonpath={.spec.clusterIP}").out
                answer = subprocess.run(["curl", "-s", "-m", "2", "--retry", "5", "--retry-all-errors",
                                         "--retry-delay", "0", f"http://{ip}/passwd"],
                                        capture_output=True, text=True).stdout
                assert answer.startswith("root:"), f"{rt}: no answer through the Service: {answer!r}"
                srv.kubectl("delete", "deployment,service", name, "--wait=true", timeout=timeout)
                wait(lambda nm=name: not srv.kubectl("get", "pods", "-l", f"app={nm}", "-o", "name",
                                                     check=False).out, timeout, f"{rt} pods gone", 0.2)
    finally:
        trace.close()
    print(f"\napply -> {n} ready endpoints per runtime (image present, {repeats} interleaved repeats)")
    print(f"{'runtime':14}{'median':>9}{'min':>9}{'max':>9}")
    for rt, ts in times.items():
        ts = sorted(ts)
        print(f"{rt:14}{ts[len(ts) // 2]:8.2f}s{ts[0]:8.2f}s{ts[-1]:8.2f}s")
    if len(times) == 2:
        p, c = sorted(times["process"])[repeats // 2], sorted(times["containerd"])[repeats // 2]
        print(f"containerd / process (medians): {c / p:.2f}x")
    if show_stages:
        print(f"\nstages after `kubectl apply` starts, first pod / {n}th pod (medians; as the client saw them)")
        print(f"{'stage':16}" + "".join(f"{rt:>20}" for rt in runtimes))
        for label in stages[runtimes[0]]:
            cells = []
            for rt in runtimes:
                rows = stages[rt].get(label, [])
                if not rows:
                    cells.append(f"{'-':>20}")
                    continue
                first = sorted(r[0] for r in rows)[len(rows) // 2]
                last = sorted(r[1] for r in rows)[len(rows) // 2]
                cells.append(f"{first:9.2f}s /{last:6.2f}s")
            print(f"{label:16}" + "".join(cells))


def run(args: argparse.Namespace) -> None:
    runtimes = [r for r in args.runtimes.split(",") if r]
    extra = ["--disable", "traefik,servicelb,coredns", *(["--debug"] if args.debug else [])]
    if "containerd" in runtimes and not (shutil.which("containerd") and Path(BUSYBOX).exists()):
        print("bench/pods: containerd or busybox-static is not installed: process runtime only")
        runtimes = [r for r in runtimes if r != "containerd"]
    if "containerd" in runtimes:
        extra += ["--container-runtime", "containerd"]
    srv = ServerProcess(agent=True, extra_args=extra)
    if "containerd" in runtimes:
        busybox_image(RUNTIME_IMAGE, srv.data_dir / "agent" / "images" / "bench-httpd.tar")
    try:
        t = time.monotonic()
        srv.start(timeout=60)
        wait(lambda: "True" in srv.kubectl("get", "node", srv.node_name, "-o",
                                           "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                                           check=False).out, 30, "node Ready", 0.2)
        print(f"server + agent up, node Ready: {time.monotonic() - t:.2f}s  (pods {srv.nets.cluster_cidr}, "
              f"services {srv.nets.service_cidr}, node {srv.node.ip})")

        n = args.replicas
        if not args.runtimes_only:
            t0 = time.monotonic()
            srv.kubectl("apply", "-f", "-", input=DEPLOYMENT % {"replicas": n})
            t_running = wait(lambda: running_pods(srv, "app=bench") >= n, args.timeout, f"{n} Running pods")
            t_ready = wait(lambda: ready_endpoints(srv, "bench") >= n, args.timeout, f"{n} ready endpoints")
            print(f"\napply -> {n} pods Running:          {t_running - t0:6.2f}s")
            print(f"apply -> {n} ready endpoints:       {t_ready - t0:6.2f}s")
            srv.kubectl("delete", "deployment", "bench", "--wait=true")

        if runtimes:
            if "containerd" in runtimes:
                wait(lambda: "containerd: ready:" in srv.log(), 60, "containerd ready", 0.2)
            runtime_rows(srv, runtimes, n, args.repeats, args.timeout, args.stages)
        if args.runtimes_only:
            return
        srv.kubectl("apply", "-f", "-", input=DEPLOYMENT % {"replicas": n})
        wait(lambda: ready_endpoints(srv, "bench") >= n, args.timeout, f"{n} ready endpoints")

        srv.kubectl("apply", "-f", "-", input=SOLO)
        wait(lambda: ready_endpoints(srv, "solo") >= 1, args.timeout, "the solo pod's endpoint")
        direct_pod = "solo-direct"
        wait(lambda: srv.kubectl("get", "pod", direct_pod, "-o", "jsonpath={.status.containerStatuses[*].ready}",
                                 check=False).out == "true", args.timeout, "the solo-direct pod ready")
        solo_ip = srv.kubectl("get", "pod", direct_pod, "-o", "jsonpath={.status.podIP}").out
        solo_svc = srv.kubectl("get", "svc", "solo", "-o", "jsonpath={.spec.clusterIP}").out
        all_svc = srv.kubectl("get", "svc", "bench", "-o", "jsonpath={.spec.clusterIP}").out
        time.sleep(1)  # the proxy's rules for the new Service

        tool = "wrk" if shutil.which("wrk") else "python loop"
        print(f"\nload: {tool}, {args.connections} connections, {args.seconds:.0f}s per row (from the node)")
        print(f"{'':34}{'pod direct':>12}{'ClusterIP':>12}{'ratio':>8}{'ClusterIP x' + str(n):>16}")
        refused = {"direct": 0, "via": 0}
        readable = True

        def counted(key: str, pod: str, host: str, port: int, close: bool) -> float:
            nonlocal readable
            n0 = paws_refused(srv, pod)
            rate = measure(host, port, args.seconds, args.connections, close)
            n1 = paws_refused(srv, pod)
            if n0 is None or n1 is None:
                readable = False
            else:
                refused[key] += n1 - n0
            return rate

        for label, close in (("keep-alive requests/s", False), ("new connections/s", True)):
            direct = counted("direct", direct_pod, solo_ip, 8080, close)
            via = counted("via", "solo", solo_svc, 80, close)
            spread = measure(all_svc, 80, args.seconds, args.connections, close)
            ratio = via / direct if direct else 0.0
            print(f"{label:34}{direct:12.0f}{via:12.0f}{ratio:8.2f}{spread:16.0f}")
        if readable:
            print(f"{'SYNs refused in TIME_WAIT (PAWS)':34}{refused['direct']:12}{refused['via']:12}")
    finally:
        if args.server_log:
            shutil.copy(srv.log_path, args.server_log)
        srv.cleanup()
        left = leftovers(srv)
        print("\ncleanup: " + ("nothing left" if not left else "LEFT BEHIND: " + ", ".join(left)))


def in_own_netns(argv: list[str]) -> int:
    """Re-run this script in a network namespace of its own: other clusters on this machine (test clusters
    share the host's namespace) hook the same NAT points, and their rules could touch this cluster's
    packets. The child cleans up its cluster; the namespace goes when it has.

    The child enters the network namespace alone (``nsenter --net``), not through ``ip netns exec``: that
    also gives it a mount namespace with a fresh /sys, without the cgroup filesystems under /sys/fs/cgroup,
    and runc then refuses every containerd pod ("no cgroup mount found in mountinfo")."""
    name = f"pk-bench-pods-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        child = subprocess.Popen(["nsenter", f"--net=/run/netns/{name}", sys.executable, __file__, "--shared-netns",
                                  *argv])
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue  # the child got the same Ctrl-C and is cleaning up: wait for it
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", type=int, default=10)
    p.add_argument("--seconds", type=float, default=5.0, help="duration of each load row")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--timeout", type=float, default=120.0, help="limit for the pods to become ready")
    p.add_argument("--runtimes", default="process,containerd",
                   help="runtimes to time side by side (comma-separated; empty: none)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats per runtime")
    p.add_argument("--shared-netns", action="store_true",
                   help="run in the current network namespace instead of one of the bench's own")
    p.add_argument("--stages", action="store_true",
                   help="also print when each stage (ReplicaSet, pod created, bound, IP, running, ready, "
                        "endpoint) was reached, per runtime")
    p.add_argument("--server-log", help="keep the server's log in this file (with --debug: debug lines)")
    p.add_argument("--debug", action="store_true", help="run the server with --debug")
    p.add_argument("--runtimes-only", action="store_true",
                   help="only the per-runtime rows (no whoami Deployment, no load rows)")
    args = p.parse_args()
    if not args.shared_netns:
        return in_own_netns(sys.argv[1:])
    try:
        run(args)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
