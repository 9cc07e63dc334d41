"""The agent inside a real `pyk3s server` (embedded agent), driven with real kubectl and curl:
Deployment + ClusterIP/NodePort Services, hostPort, readiness gating, restarts, logs, exec, killall."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from pyk3s_server import NodeAddress, ServerProcess, _host_routes

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="root + nft")]

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
        readinessProbe: {httpGet: {path: /health, port: web}, periodSeconds: 1}
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
    args: ["--port", "9090"]
    ports: [{containerPort: 9090, hostPort: %(host_port)d}]
"""


def bridge_node_address(ident):
    """Like the support helper's dummy link, on a bridge device (this kernel has no dummy driver)."""
    import ipaddress

    used = _host_routes()
    net = next(n for n in (ipaddress.ip_network(f"172.31.{t}.0/24") for t in range(10, 250))
               if not any(n.overlaps(u) for u in used))
    link, ip = f"pkd{ident}", str(net[1])
    subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", f"{ip}/24", "dev", link], check=True)
    subprocess.run(["ip", "link", "set", link, "up"], check=True)
    return NodeAddress(link, ip)


@pytest.fixture(scope="module")
def cluster(kubectl_bin):
    srv = ServerProcess(agent=True, extra_args=["--disable", "traefik,servicelb,coredns"])
    try:
        srv.node = bridge_node_address(srv.ident)
        srv.start(timeout=60)
        yield srv
    finally:
        srv.cleanup()


def curl(url, netns=None, timeout=3):
    argv = (["ip", "netns", "exec", netns] if netns else []) + ["curl", "-s", "-m", str(timeout), url]
    return subprocess.run(argv, capture_output=True, text=True)


def pods(cluster, selector):
    return json.loads(cluster.kubectl("get", "pods", "-l", selector, "-o", "json").stdout)["items"]


def all_ready(items, n):
    return len(items) == n and all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])
        for p in items) and items


@pytest.fixture(scope="module")
def deployed(cluster):
    node_port, host_port = 30000 + int(cluster.ident, 16) % 2700, 20000 + int(cluster.ident, 16) % 9000
    cluster.wait_for(lambda: "True" in cluster.kubectl(
        "get", "node", cluster.node_name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}").stdout,
        what="node Ready")
    cluster.kubectl("apply", "-f", "-", input=MANIFEST % {"node_port": node_port, "host_port": host_port})
    cluster.wait_for(lambda: all_ready(pods(cluster, "app=whoami"), 2), timeout=60, what="2 ready whoami pods")
    cluster.wait_for(lambda: all_ready(pods(cluster, "app=client"), 1), timeout=60, what="client pod")
    return node_port, host_port


def cluster_ip(cluster, name):
    return cluster.kubectl("get", "svc", name, "-o", "jsonpath={.spec.clusterIP}").stdout


def test_clusterip_from_host_and_pod(cluster, deployed):
    ip = cluster_ip(cluster, "whoami")
    names = {p["metadata"]["name"] for p in pods(cluster, "app=whoami")}
    seen = set()
    for _ in range(20):
        r = cluster.wait_for(lambda: curl(f"http://{ip}/").stdout, what="ClusterIP answer")
        seen.add(r.splitlines()[0].removeprefix("Hostname: "))
    assert seen == names
    client = pods(cluster, "app=client")[0]
    netns = f"pk-{client['metadata']['uid'].replace('-', '')[:12]}"
    r = curl(f"http://{ip}/", netns=netns)
    assert r.returncode == 0 and r.stdout.splitlines()[0].removeprefix("Hostname: ") in names
    assert f"RemoteAddr: {client['status']['podIP']}:" in r.stdout


def test_nodeport_and_hostport_from_host(cluster, deployed):
    node_port, host_port = deployed
    assert curl(f"http://{cluster.node.ip}:{node_port}/").stdout.startswith("Hostname: whoami-")
    assert curl(f"http://127.0.0.1:{node_port}/").stdout.startswith("Hostname: whoami-")
    assert curl(f"http://{cluster.node.ip}:{host_port}/").stdout.startswith("Hostname: client")


def test_logs_exec_and_restart(cluster, deployed):
    pod = pods(cluster, "app=client")[0]
    name = pod["metadata"]["name"]
    curl(f"http://{pod['status']['podIP']}:9090/")
    out = cluster.kubectl("exec", name, "--", "cat", "/etc/resolv.conf").stdout
    assert "nameserver 10.43.0.10" in out and "options ndots:5" in out
    assert cluster.kubectl("exec", name, "--", "sh", "-c", "exit 3", check=False).rc != 0
    pid = int(pod["status"]["containerStatuses"][0]["containerID"].removeprefix("pyk3s://"))
    os.kill(pid, signal.SIGKILL)
    cluster.wait_for(lambda: pods(cluster, "app=client")[0]["status"]["containerStatuses"][0]["restartCount"] >= 1
                     and all_ready(pods(cluster, "app=client"), 1), timeout=30, what="restart")
    cluster.kubectl("logs", name, "--previous")
    assert cluster.kubectl("logs", name, "--tail", "1").rc == 0


def test_readiness_gates_endpoints(cluster, deployed):
    ip = cluster_ip(cluster, "whoami")
    victim = pods(cluster, "app=whoami")[0]
    # make the readiness probe fail by pointing it somewhere closed: patch a bare pod copy instead of the template
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unready", "labels": {"app": "whoami"}},
           "spec": {"containers": [{"name": "w", "image": "traefik/whoami", "args": ["--port", "8080"],
                                    "ports": [{"containerPort": 8080, "name": "web"}],
                                    "readinessProbe": {"tcpSocket": {"port": 9999}, "periodSeconds": 1}}]}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    cluster.wait_for(lambda: pods(cluster, "app=whoami") and any(
        p["metadata"]["name"] == "unready" and p.get("status", {}).get("phase") == "Running"
        for p in pods(cluster, "app=whoami")), timeout=30, what="unready pod running")
    time.sleep(2)
    for _ in range(15):
        assert "Hostname: unready" not in curl(f"http://{ip}/").stdout
    assert victim


def test_killall_leaves_nothing(cluster, deployed):
    subprocess.run([sys.executable, "-m", "pyk3s", "killall", "--data-dir", str(cluster.data_dir),
                    "--bridge-name", f"pkb{cluster.ident}"], check=True, capture_output=True, timeout=60)
    assert f"pkb{cluster.ident}" not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert f"pyk3s-pkb{cluster.ident}" not in tables
    left = [p for p in os.listdir("/proc") if p.isdigit()
            and str(cluster.data_dir).encode() in open(f"/proc/{p}/cmdline", "rb").read()]
    assert not left
