"""The agent inside a real `pyk3s server` (embedded agent), driven with the real kubectl and curl.

One module-scoped cluster (cluster DNS on, traefik/servicelb off) runs a two-replica whoami Deployment
behind a ClusterIP and a NodePort Service plus a client pod with a hostPort; the tests run in file
order and the last one on that cluster is `pyk3s killall`. Every pod UID the tests see is remembered so
teardown can assert that none of its netns/veths, the bridge, the nftables table or a process is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyk3s_server import REPO, ServerProcess

from pyk3s.agent.cni.podnet import netns_name, veth_name

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("curl"),
                                 reason="needs root, nft and curl")]

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: whoami}
spec:
  replicas: 2
  selector: {matchLabels: {app: whoami}}
  template:
    metadata: {labels: {app: whoami}}
    spec:
      containers:
      - name: whoami
        image: traefik/whoami
        args: ["--port", "8080"]
        ports: [{containerPort: 8080, name: web}]
        readinessProbe: {httpGet: {path: /health, port: web}, periodSeconds: 1, failureThreshold: 1}
        # the documented way to drain a Service during a rollout: the endpoint is withdrawn before SIGTERM
        lifecycle: {preStop: {sleep: {seconds: 2}}}
---
apiVersion: v1
kind: Service
metadata: {name: whoami}
spec:
  selector: {app: whoami}
  ports: [{port: 80, targetPort: web}]
---
apiVersion: v1
kind: Service
metadata: {name: whoami-np}
spec:
  type: NodePort
  selector: {app: whoami}
  ports: [{port: 80, targetPort: 8080, nodePort: %(node_port)d}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec:
  containers:
  - name: c
    image: pyk3s/whoami
    args: ["--port", "9090", "--verbose"]
    workingDir: %(client_wd)s
    ports: [{containerPort: 9090, hostPort: %(host_port)d}]
"""

SEEN_UIDS: set[str] = set()
CLIENT_WD = "/pk-client-workdir"  # a workingDir no node has


# -- helpers ---------------------------------------------------------------------------------------------

def curl(url: str, netns: str | None = None, timeout: float = 3, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    argv = (["ip", "netns", "exec", netns] if netns else []) + ["curl", "-sS", "-m", str(timeout), *extra, url]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 5)


def pods(srv: ServerProcess, selector: str | None = None, namespace: str = "default") -> list[dict]:
    args = ["get", "pods", "-n", namespace, "-o", "json"] + (["-l", selector] if selector else [])
    items = srv.kubectl(*args).json()["items"]
    SEEN_UIDS.update(p["metadata"]["uid"] for p in items)
    return items


def pod(srv: ServerProcess, name: str) -> dict:
    obj = srv.kubectl("get", "pod", name, "-o", "json").json()
    SEEN_UIDS.add(obj["metadata"]["uid"])
    return obj


def is_ready(p: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])


def running_ready(items: list[dict], n: int) -> bool:
    live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    return len(live) == n and all(is_ready(p) for p in live)


def hostname(body: str) -> str:
    first = body.splitlines()[0] if body else ""
    return first.removeprefix("Hostname: ")


def cluster_ip(srv: ServerProcess, name: str) -> str:
    return srv.kubectl("get", "svc", name, "-o", "jsonpath={.spec.clusterIP}").out


def slice_endpoints(srv: ServerProcess, service: str) -> dict[str, bool]:
    """pod name -> ready, from the Service's EndpointSlices."""
    out = srv.kubectl("get", "endpointslices", "-l", f"kubernetes.io/service-name={service}", "-o", "json").json()
    return {(e.get("targetRef") or {}).get("name", ""): (e.get("conditions") or {}).get("ready") is not False
            for s in out["items"] for e in s.get("endpoints") or []}


def container_pid(p: dict) -> int:
    return int(p["status"]["containerStatuses"][0]["containerID"].removeprefix("pyk3s://"))


def pid_alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def leftovers(srv: ServerProcess, pids: set[int] = frozenset()) -> dict[str, list[str]]:
    """What of this cluster is still on the machine."""
    netns = {ln.split()[0] for ln in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                     text=True).stdout.splitlines() if ln.split()}
    links = {lk["ifname"] for lk in json.loads(subprocess.run(["ip", "-j", "link", "show"], capture_output=True,
                                                              text=True).stdout or "[]")}
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.split()
    procs = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if str(srv.data_dir).encode() in (d / "cmdline").read_bytes():
                    procs.append(d.name)
            except OSError:
                continue
    return {
        "netns": sorted(netns & {netns_name(u) for u in SEEN_UIDS}),
        "veths": sorted(links & {veth_name(u) for u in SEEN_UIDS}),
        "bridge": [srv.bridge] if srv.bridge in links else [],
        "nft": [srv.nft_table] if srv.nft_table in tables else [],
        "processes": procs + [str(p) for p in pids if pid_alive(p)],
    }


def assert_nothing_left(srv: ServerProcess, pids: set[int] = frozenset()) -> None:
    left = leftovers(srv, pids)
    assert not any(left.values()), f"left behind: {left}"


# -- fixtures --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(kubectl_bin: str) -> Iterator[ServerProcess]:
    srv = ServerProcess(agent=True, extra_args=["--disable", "traefik,servicelb"])
    try:
        srv.start(timeout=60)
        yield srv
    finally:
        srv.cleanup()
    assert_nothing_left(srv)
    assert srv.node is not None and srv.node.link not in subprocess.run(["ip", "link"], capture_output=True,
                                                                        text=True).stdout


@pytest.fixture(scope="module")
def deployed(cluster: ServerProcess) -> dict:
    ident = int(cluster.ident, 16)
    node_port, host_port = 30000 + ident % 2700, 20000 + ident % 9000
    cluster.wait_for(lambda: "True" in cluster.kubectl(
        "get", "node", cluster.node_name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}").out,
        what="node Ready")
    lease = cluster.wait_for(lambda: cluster.kubectl("get", "lease", "-n", "kube-node-lease", cluster.node_name,
                                                     "-o", "jsonpath={.spec.renewTime}").out, what="node Lease")
    cluster.kubectl("apply", "-f", "-", input=MANIFEST % {"node_port": node_port, "host_port": host_port,
                                                          "client_wd": CLIENT_WD})
    cluster.wait_for(lambda: running_ready(pods(cluster, "app=whoami"), 2), timeout=60, what="2 ready whoami pods")
    cluster.wait_for(lambda: running_ready(pods(cluster, "app=client"), 1), timeout=60, what="client pod")
    cluster.wait_for(lambda: sum(slice_endpoints(cluster, "whoami").values()) == 2, what="2 whoami endpoints")
    return {"node_port": node_port, "host_port": host_port, "lease": lease}


# -- the cluster -----------------------------------------------------------------------------------------

def test_node_registered_ready_with_internal_ip(cluster, deployed):
    wide = cluster.kubectl("get", "nodes", "-o", "wide").out.splitlines()
    row = next(line.split() for line in wide[1:] if line.split()[0] == cluster.node_name)
    header = wide[0].split()
    assert row[header.index("STATUS")] == "Ready"
    assert row[header.index("INTERNAL-IP")] == cluster.node.ip
    node = cluster.kubectl("get", "node", cluster.node_name, "-o", "json").json()
    assert node["spec"]["podCIDR"].startswith("10.42.")
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == cluster.node_name


def test_clusterip_from_host_and_from_pod(cluster, deployed):
    ip = cluster_ip(cluster, "whoami")
    names = {p["metadata"]["name"] for p in pods(cluster, "app=whoami")}
    seen = set()
    for _ in range(20):
        r = curl(f"http://{ip}/")
        assert r.returncode == 0, r.stderr
        seen.add(hostname(r.stdout))
    assert seen == names
    client = pods(cluster, "app=client")[0]
    r = curl(f"http://{ip}/", netns=netns_name(client["metadata"]["uid"]))
    assert r.returncode == 0, r.stderr
    assert hostname(r.stdout) in names
    assert f"RemoteAddr: {client['status']['podIP']}:" in r.stdout  # pod-to-service traffic is not masqueraded


def test_service_by_name_through_cluster_dns(cluster, deployed):
    cluster.wait_for(lambda: running_ready(pods(cluster, "k8s-app=kube-dns", "kube-system"), 1), timeout=60,
                     what="cluster DNS ready")
    names = {p["metadata"]["name"] for p in pods(cluster, "app=whoami")}
    for url in ("http://whoami/", "http://whoami.default.svc.cluster.local/"):
        out = cluster.wait_for(lambda u=url: cluster.kubectl("exec", "client", "--", "curl", "-sS", "-m", "3", u,
                                                             check=False).out, what=f"{url} by name")
        assert hostname(out) in names


def test_nodeport_and_hostport_from_host(cluster, deployed):
    node_port, host_port = deployed["node_port"], deployed["host_port"]
    for addr in (cluster.node.ip, "127.0.0.1"):
        r = curl(f"http://{addr}:{node_port}/")
        assert r.stdout.startswith("Hostname: whoami-"), (addr, r.stderr)
    r = curl(f"http://{cluster.node.ip}:{host_port}/")
    assert r.stdout.startswith("Hostname: client"), r.stderr


def test_host_port_conflict_is_unschedulable(cluster, deployed):
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "port-clash"},
           "spec": {"containers": [{"name": "c", "image": "pyk3s/whoami", "args": ["--port", "9191"],
                                    "ports": [{"containerPort": 9191, "hostPort": deployed["host_port"]}]}]}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(doc))
    try:
        def condition():
            p = pod(cluster, "port-clash")
            c = next(c for c in p["status"]["conditions"] if c["type"] == "PodScheduled")
            return p["status"]["phase"] == "Pending" and c["status"] == "False" and c
        cond = cluster.wait_for(condition, what="PodScheduled=False")
        assert cond["reason"] == "Unschedulable"
        assert cond["message"].startswith(
            "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.")
        assert not pod(cluster, "port-clash")["spec"].get("nodeName")
    finally:
        cluster.kubectl("delete", "pod", "port-clash", "--wait=false")


def test_readiness_gates_endpoints(cluster, deployed):
    ip = cluster_ip(cluster, "whoami")
    victim = pods(cluster, "app=whoami")[0]
    name, pod_ip = victim["metadata"]["name"], victim["status"]["podIP"]
    # traefik/whoami's POST /health sets the status its /health (the readiness probe) answers
    assert curl(f"http://{pod_ip}:8080/health", extra=("-X", "POST", "-d", "503")).returncode == 0
    try:
        cluster.wait_for(lambda: slice_endpoints(cluster, "whoami").get(name) is False, what="endpoint not ready")
        cluster.wait_for(lambda: not is_ready(pod(cluster, name)), what="pod not Ready")
        time.sleep(0.5)  # the proxy's debounce
        for _ in range(15):
            r = curl(f"http://{ip}/")
            assert r.returncode == 0 and hostname(r.stdout) != name, r.stdout + r.stderr
    finally:
        curl(f"http://{pod_ip}:8080/health", extra=("-X", "POST", "-d", "200"))
    cluster.wait_for(lambda: slice_endpoints(cluster, "whoami").get(name) is True, what="endpoint ready again")
    cluster.wait_for(lambda: any(hostname(curl(f"http://{ip}/").stdout) == name for _ in range(10)),
                     what="traffic to the pod again")


def test_logs_and_exec_through_the_api_server(cluster, deployed):
    web = pods(cluster, "app=whoami")[0]["metadata"]["name"]
    assert "Starting up on port 8080" in cluster.kubectl("logs", web).out
    # follow: lines written after the stream opened arrive on it
    follow = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.kubeconfig), "logs", "-f", "client"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(iter(follow.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any("/follow-marker" in line for line in got):
            curl(f"http://{cluster.node.ip}:{deployed['host_port']}/follow-marker")
            time.sleep(0.3)
        assert any("/follow-marker" in line for line in got), (got, follow.poll())
        assert follow.poll() is None, "kubectl logs -f must still be following"
    finally:
        follow.terminate()
        follow.wait(10)
    tail = cluster.kubectl("logs", "client", "--tail", "1").out.splitlines()
    assert len(tail) == 1 and "/follow-marker" in tail[0]
    r = cluster.kubectl("exec", "client", "--", "cat", "/etc/resolv.conf")
    assert f"nameserver {cluster.nets.cluster_dns}" in r.out and "options ndots:5" in r.out
    # exec starts in the container's workingDir, which the node lacks: it exists in the container's view alone
    assert cluster.kubectl("exec", "client", "--", "pwd").out == f"{CLIENT_WD}\n"
    assert not os.path.lexists(CLIENT_WD)
    r = cluster.kubectl("exec", "client", "--", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3", check=False)
    assert r.rc == 3 and r.out == "to-stdout\n" and "to-stderr" in r.err
    assert "command terminated with exit code 3" in r.err


def test_killed_container_restarts(cluster, deployed):
    before = pod(cluster, "client")
    pid = container_pid(before)
    os.kill(pid, signal.SIGKILL)

    def restarted():
        cs = pod(cluster, "client")["status"]["containerStatuses"][0]
        return cs["restartCount"] == 1 and cs.get("ready") and cs
    cs = cluster.wait_for(restarted, timeout=30, what="client container restarted")
    last = cs["lastState"]["terminated"]
    assert last["exitCode"] == 137 and last["reason"] == "Error"
    assert last["containerID"] == f"pyk3s://{pid}" and cs["containerID"] != last["containerID"]
    assert "/follow-marker" in cluster.kubectl("logs", "client", "--previous").out
    assert "/follow-marker" not in cluster.kubectl("logs", "client").out
    cluster.wait_for(lambda: curl(f"http://{cluster.node.ip}:{deployed['host_port']}/").stdout
                     .startswith("Hostname: client"), what="hostPort after the restart")


def test_rolling_update_keeps_the_service_answering(cluster, deployed):
    ip = cluster_ip(cluster, "whoami")
    old = {p["metadata"]["name"] for p in pods(cluster, "app=whoami")}
    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def load():  # bounded: at most 600 requests or 90 s
        deadline = time.monotonic() + 90
        while not stop.is_set() and len(results) < 600 and time.monotonic() < deadline:
            r = curl(f"http://{ip}/", timeout=2)
            results.append((r.returncode, hostname(r.stdout)))
            time.sleep(0.02)
    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    try:
        time.sleep(0.5)
        cluster.kubectl("set", "image", "deployment/whoami", "whoami=pyk3s/whoami:v2")
        cluster.kubectl("rollout", "status", "deployment/whoami", "--timeout=90s", timeout=100)
        time.sleep(1)
    finally:
        stop.set()
        worker.join(10)
    new = {p["metadata"]["name"] for p in pods(cluster, "app=whoami") if not p["metadata"].get("deletionTimestamp")}
    assert len(new) == 2 and not new & old
    failed = [r for r in results if r[0] != 0]
    assert len(results) > 20 and not failed, f"{len(failed)} of {len(results)} requests failed: {failed[:5]}"
    served = {h for _, h in results}
    assert served & old and served & new, served


def test_node_lease_is_renewed(cluster, deployed):
    get = ("get", "lease", "-n", "kube-node-lease", cluster.node_name, "-o", "json")
    lease = cluster.kubectl(*get).json()
    assert lease["spec"]["holderIdentity"] == cluster.node_name
    cluster.wait_for(lambda: cluster.kubectl(*get).json()["spec"]["renewTime"] != deployed["lease"], timeout=25,
                     interval=1, what="lease renewal")


def test_killall_leaves_nothing(cluster, deployed):
    pids = {int(cs["containerID"].removeprefix("pyk3s://")) for ns in ("default", "kube-system")
            for p in pods(cluster, namespace=ns) for cs in (p.get("status") or {}).get("containerStatuses") or []
            if cs.get("containerID")}
    assert pids
    assert leftovers(cluster)["netns"], "the cluster's pods must have network namespaces before killall"
    # CoreDNS's /etc/coredns and its service account token's directory were made in its own view alone
    assert not (cluster.data_dir / "agent" / "mount-points").exists()
    r = cluster.killall()
    assert r.returncode == 0, r.stderr
    assert cluster.proc.wait(10) is not None  # the server is among the processes killall stops
    assert_nothing_left(cluster, pids)


# -- node names ------------------------------------------------------------------------------------------

def test_node_name_from_k3s_node_name(kubectl_bin):
    srv = ServerProcess(agent=True, node_name_flag=False, extra_args=["--disable", "traefik,servicelb,coredns"])
    srv.node_name = f"pk-env-{srv.ident}"
    srv.env = {"K3S_NODE_NAME": srv.node_name}
    try:
        srv.start(timeout=60)
        srv.wait_for(lambda: srv.kubectl("get", "node", srv.node_name, "-o",
                                         "jsonpath={.status.conditions[?(@.type=='Ready')].status}").out == "True",
                     what="node named from K3S_NODE_NAME")
        assert srv.kubectl("get", "nodes", "-o", "name").out.split() == [f"node/{srv.node_name}"]
    finally:
        srv.cleanup()
    assert_nothing_left(srv)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_invalid_node_name_stops_start_up(tmp_path, how):
    argv = [sys.executable, "-m", "pyk3s", "server", "--data-dir", str(tmp_path / "data"),
            "--https-listen-port", "0", "--config", str(tmp_path / "none.yaml"), "--disable", "coredns,traefik,servicelb"]
    env = dict(os.environ)
    if how == "flag":
        argv += ["--node-name", "Not_A_Valid.Name-"]
    else:
        env["K3S_NODE_NAME"] = "not_valid"
    r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert r.returncode != 0
    assert "--node-name" in r.stderr and "invalid node name" in r.stderr, r.stderr
