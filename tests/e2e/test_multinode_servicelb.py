"""Three nodes on one machine (tests/support/cluster.py, ``--flannel-backend host-gw``: they share one
link): joining agents, host-gw pod routes, cross-node
pod and ClusterIP traffic, NodeHosts, and ServiceLB across nodes (k3s.md 1.3-1.5): held ports, Pending
svclb pods, the pending explanation, ``enablelb``, ``lbpool``, and a node that goes NotReady.

Traffic goes only to the cluster's own underlay bridge and node namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from cluster import Cluster

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="root + nft")]

ENABLELB = "svccontroller.k3s.cattle.io/enablelb"
LBPOOL = "svccontroller.k3s.cattle.io/lbpool"

WHOAMI = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {kubernetes.io/hostname: %(node)s}
      containers:
      - name: whoami
        image: traefik/whoami
        args: ["--port", "8080"]
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {httpGet: {path: /health, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""

HOLDER = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s, labels: {app: holder}}
spec:
  nodeSelector: {kubernetes.io/hostname: %(node)s}
  containers:
  - name: holder
    image: pyk3s/whoami
    args: ["--port", "%(cport)d"]
    ports: [{containerPort: %(cport)d, hostPort: %(port)d}]
"""

LB = """
apiVersion: v1
kind: Service
metadata:
  name: %(name)s
  labels: {%(labels)s}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: %(port)d, targetPort: http}]
"""


@pytest.fixture(scope="module")
def cl(kubectl_bin: str) -> Iterator[Cluster]:
    # --node-monitor-grace-period well above the agents' 10 s Lease renewals (K3s: 40 s): at 10 s, a
    # renewal arriving a few milliseconds late would mark a live node NotReady
    c = Cluster(nodes=3, server_args=("--disable", "traefik", "--node-monitor-grace-period", "25",
                                      "--pod-eviction-timeout", "10", "--flannel-backend", "host-gw"))
    c.start(timeout=120)
    try:
        yield c
    finally:
        c.cleanup()
    for node in c.members:
        assert node.netns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert c.bridge not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def web(cl: Cluster) -> dict:
    """whoami on node 1 behind ClusterIP Service ``web``."""
    cl.kubectl("apply", "-f", "-", input=WHOAMI % {"node": cl.members[1].name})
    cl.wait_for(lambda: _ready_pods(cl, "app=web"), timeout=90, what="web pod ready")
    pod = _ready_pods(cl, "app=web")[0]
    return {"pod_ip": pod["status"]["podIP"], "cluster_ip": cl.kubectl(
        "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").out}


def _ready_pods(cl: Cluster, selector: str, namespace: str = "default") -> list[dict]:
    items = cl.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").json()["items"]
    return [p for p in items if any(c["type"] == "Ready" and c["status"] == "True"
                                     for c in (p.get("status") or {}).get("conditions") or [])]


def _curl(cl: Cluster, url: str, node=None, timeout: float = 3) -> subprocess.CompletedProcess:
    argv = ["curl", "-sS", "-m", str(timeout), url]
    if node is not None:
        return cl.exec_in(node, *argv, timeout=timeout + 5)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 5)


def _ingress(cl: Cluster, svc: str) -> list[str]:
    out = cl.kubectl("get", "svc", svc, "-o", "json").json()
    return [i.get("ip") for i in ((out.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]


def _svclb_pods(cl: Cluster, svc: str) -> list[dict]:
    return cl.kubectl("get", "pods", "-n", "kube-system", "-l", f"svccontroller.k3s.cattle.io/svcname={svc}",
                      "-o", "json").json()["items"]


def _target_node(pod: dict) -> str:
    """The node a DaemonSet pod is for: where it runs, else its node-affinity target."""
    if pod["spec"].get("nodeName"):
        return pod["spec"]["nodeName"]
    terms = (((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    for t in terms:
        for f in t.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("values"):
                return f["values"][0]
    return "<none>"


def _by_phase(pods: list[dict]) -> dict[str, str]:
    """node -> phase, of the live svclb pods."""
    return {_target_node(p): p["status"].get("phase", "")
            for p in pods if not p["metadata"].get("deletionTimestamp")}


def _label(cl: Cluster, node, *labels: str) -> None:
    cl.kubectl("label", "node", node.name, "--overwrite", *labels)


def _cleanup_lb(cl: Cluster, *names: str) -> None:
    for n in names:
        cl.kubectl("delete", "svc", n, "--ignore-not-found", "--wait=false")
    cl.kubectl("delete", "pod", "-l", "app=holder", "--ignore-not-found", "--grace-period=0", "--wait=false")
    for node in cl.members:
        cl.kubectl("label", "node", node.name, f"{ENABLELB}-", f"{LBPOOL}-")
    cl.wait_for(lambda: not any(_svclb_pods(cl, n) for n in names), timeout=60, what="svclb pods gone")


# -- joining and the pod network ------------------------------------------------------------------------

def test_agents_join_with_their_names_and_addresses(cl: Cluster) -> None:
    nodes = cl.kubectl("get", "nodes", "-o", "json").json()["items"]
    got = {n["metadata"]["name"]: next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
           for n in nodes}
    assert got == {m.name: m.ip for m in cl.members}
    roles = {n["metadata"]["name"]: "node-role.kubernetes.io/control-plane" in n["metadata"]["labels"] for n in nodes}
    assert roles == {m.name: m.role == "server" for m in cl.members}
    # the agent's kubeconfig points at its local load balancer, with a system:node identity
    agent = cl.members[1]
    kc = (agent.data_dir / "agent" / "kubelet.kubeconfig").read_text()
    assert "https://127.0.0.1:6444" in kc


def test_each_node_routes_the_other_pod_cidrs(cl: Cluster) -> None:
    nodes = cl.kubectl("get", "nodes", "-o", "json").json()["items"]
    cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in nodes}
    for m in cl.members:
        want = {cidrs[o.name]: o.ip for o in cl.members if o is not m}

        def routes(m=m, want=want) -> bool:
            rows = json.loads(cl.exec_in(m, "ip", "-j", "route", "show", "proto", "201").stdout or "[]")
            return {r["dst"]: r["gateway"] for r in rows} == want
        cl.wait_for(routes, timeout=30, what=f"host-gw routes on {m.name}")


def test_pods_and_cluster_ips_reachable_from_every_node(cl: Cluster, web: dict) -> None:
    for m in cl.members:
        r = cl.wait_for(lambda m=m: _curl(cl, f"http://{web['pod_ip']}:8080/", m).stdout, timeout=20,
                        what=f"pod IP from {m.name}")
        assert "Hostname: web-" in r
        r = cl.wait_for(lambda m=m: _curl(cl, f"http://{web['cluster_ip']}/", m).stdout, timeout=20,
                        what=f"ClusterIP from {m.name}")
        assert "Hostname: web-" in r


def test_nodehosts_lists_every_node(cl: Cluster) -> None:
    def hosts() -> str:
        return cl.kubectl("get", "cm", "-n", "kube-system", "coredns", "-o", "jsonpath={.data.NodeHosts}").out

    cl.wait_for(lambda: all(f"{m.ip} {m.name}" in hosts() for m in cl.members), timeout=30, what="NodeHosts")


def test_node_marked_unknown_and_pod_marked_not_ready_come_back(cl: Cluster, web: dict) -> None:
    """What the node-lifecycle controller writes for a node whose heartbeat it missed (Ready Unknown, the
    node's pods not Ready) is undone by a live agent, as by the kubelet: the node is Ready and untainted
    again within one Lease period (10 s), and the pod is back in its Service's endpoints."""
    c = cl.members[2]
    node = cl.kubectl("get", "node", c.name, "-o", "json").json()
    unknown = [{**x, "status": "Unknown", "reason": "NodeStatusUnknown", "message": "Kubelet stopped posting node "
                "status."} if x["type"] in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure") else x
               for x in node["status"]["conditions"]]
    cl.kubectl("patch", "node", c.name, "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": {"conditions": unknown}}))
    pod = _ready_pods(cl, "app=web")[0]
    not_ready = [{**x, "status": "False"} if x["type"] == "Ready" else x for x in pod["status"]["conditions"]]
    cl.kubectl("patch", "pod", pod["metadata"]["name"], "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": {"conditions": not_ready}}))

    def node_back() -> bool:
        cur = cl.kubectl("get", "node", c.name, "-o", "json").json()
        ready = next(x for x in cur["status"]["conditions"] if x["type"] == "Ready")
        return ready["status"] == "True" and not any(t["key"].startswith("node.kubernetes.io/")
                                                     for t in cur["spec"].get("taints") or [])
    cl.wait_for(node_back, timeout=25, what=f"{c.name} Ready again")

    def pod_back() -> bool:
        out = cl.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", "json").json()
        return [(e.get("conditions") or {}).get("ready") for s in out["items"] for e in s.get("endpoints") or []
                if (e.get("targetRef") or {}).get("name") == pod["metadata"]["name"]] == [True]
    cl.wait_for(pod_back, timeout=15, what="web pod Ready again")


def test_second_agent_with_a_taken_node_name_is_refused(cl: Cluster) -> None:
    taken = cl.members[1]
    other = cl.members[2]
    argv = cl.agent_argv(other)
    argv[argv.index("--node-name") + 1] = taken.name
    argv[argv.index("--data-dir") + 1] = str(other.dir / "dup-data")
    res = cl.exec_in(other, *argv, timeout=60)
    assert res.returncode == 1
    assert "Node password rejected" in res.stderr and "--with-node-id" in res.stderr


def test_wrong_token_is_refused_naming_the_flag(cl: Cluster) -> None:
    other = cl.members[2]
    argv = cl.agent_argv(other)
    i = argv.index("--token-file")
    argv[i:i + 2] = ["--token", "not-the-token"]
    argv[argv.index("--data-dir") + 1] = str(other.dir / "bad-token-data")
    res = cl.exec_in(other, *argv, timeout=60)
    assert res.returncode == 1 and "--token" in res.stderr, res.stderr
    token = (cl.members[0].data_dir / "server" / "token").read_text().strip()
    forged = "K10" + "0" * 64 + "::" + token.split("::", 1)[1]
    argv[argv.index("--token") + 1] = forged
    res = cl.exec_in(other, *argv, timeout=60)
    assert res.returncode == 1 and "does not match the hash in --token" in res.stderr, res.stderr


# -- ServiceLB across nodes ---------------------------------------------------------------------------

def test_port_held_on_one_node_leaves_the_others_serving(cl: Cluster, web: dict) -> None:
    a = cl.members[0]
    port = 8081
    cl.kubectl("apply", "-f", "-", input=HOLDER % {"name": "hold-a", "node": a.name, "port": port, "cport": 9001})
    cl.wait_for(lambda: _ready_pods(cl, "app=holder"), timeout=60, what="holder pod")
    cl.kubectl("apply", "-f", "-", input=LB % {"name": "lb-held", "port": port, "labels": ""})
    try:
        others = sorted(m.ip for m in cl.members if m is not a)
        cl.wait_for(lambda: sorted(_ingress(cl, "lb-held")) == others, timeout=60, what="ingress = the free nodes")
        phases = cl.wait_for(lambda: (p := _by_phase(_svclb_pods(cl, "lb-held")))
                             and p.get(a.name) == "Pending" and p, timeout=30, what="svclb Pending on A")
        assert all(phases[m.name] == "Running" for m in cl.members if m is not a)
        b = cl.members[1]
        body = cl.wait_for(lambda: _curl(cl, f"http://{b.ip}:{port}/").stdout, timeout=30, what="curl node B")
        assert "Hostname: web-" in body
    finally:
        _cleanup_lb(cl, "lb-held")


def test_port_held_everywhere_stays_pending_with_explanation(cl: Cluster, web: dict) -> None:
    port = 8082
    for i, m in enumerate(cl.members):
        cl.kubectl("apply", "-f", "-", input=HOLDER % {"name": f"hold-{i}", "node": m.name, "port": port,
                                                       "cport": 9100 + i})
    cl.wait_for(lambda: len(_ready_pods(cl, "app=holder")) == len(cl.members), timeout=60, what="holders")
    cl.kubectl("apply", "-f", "-", input=LB % {"name": "lb-full", "port": port, "labels": ""})
    try:
        def pending() -> dict | None:
            svc = cl.kubectl("get", "svc", "lb-full", "-o", "json").json()
            cond = next((c for c in svc["status"].get("conditions") or []
                         if c["type"] == "pyk3s.io/LoadBalancerReady"), None)
            return cond if cond and cond["status"] == "False" else None
        cond = cl.wait_for(pending, timeout=60, what="LoadBalancerReady False")
        assert "port" in cond["message"]
        assert _ingress(cl, "lb-full") == []
        assert "<pending>" in cl.kubectl("get", "svc", "lb-full").out
        events = cl.wait_for(lambda: [e for e in cl.kubectl(
            "get", "events", "--field-selector", "involvedObject.name=lb-full", "-o", "json").json()["items"]
            if e["reason"] == "LoadBalancerPending"], timeout=30, what="LoadBalancerPending event")
        assert events[0]["type"] == "Warning"
        assert set(_by_phase(_svclb_pods(cl, "lb-full")).values()) == {"Pending"}
    finally:
        _cleanup_lb(cl, "lb-full")


def test_enablelb_on_one_node_moves_every_svclb_pod_there(cl: Cluster, web: dict) -> None:
    c = cl.members[2]
    cl.kubectl("apply", "-f", "-", input=LB % {"name": "lb-allow", "port": 8083, "labels": ""})
    try:
        cl.wait_for(lambda: len(_ingress(cl, "lb-allow")) == len(cl.members), timeout=60, what="all nodes serve")
        _label(cl, c, f"{ENABLELB}=true")
        cl.wait_for(lambda: set(_by_phase(_svclb_pods(cl, "lb-allow"))) == {c.name}, timeout=60,
                    what="svclb pods only on C")
        cl.wait_for(lambda: _ingress(cl, "lb-allow") == [c.ip], timeout=60, what="ingress = C")
        assert "Hostname: web-" in cl.wait_for(lambda: _curl(cl, f"http://{c.ip}:8083/").stdout, timeout=30,
                                                what="curl C")
    finally:
        _cleanup_lb(cl, "lb-allow")


def test_lbpool_splits_two_services_on_one_port(cl: Cluster, web: dict) -> None:
    b, c = cl.members[1], cl.members[2]
    _label(cl, b, f"{ENABLELB}=true", f"{LBPOOL}=blue")
    _label(cl, c, f"{ENABLELB}=true", f"{LBPOOL}=green")
    cl.kubectl("apply", "-f", "-", input=LB % {"name": "lb-blue", "port": 8084, "labels": f"{LBPOOL}: blue"})
    cl.kubectl("apply", "-f", "-", input=LB % {"name": "lb-green", "port": 8084, "labels": f"{LBPOOL}: green"})
    try:
        cl.wait_for(lambda: _ingress(cl, "lb-blue") == [b.ip], timeout=60, what="blue on B")
        cl.wait_for(lambda: _ingress(cl, "lb-green") == [c.ip], timeout=60, what="green on C")
        assert set(_by_phase(_svclb_pods(cl, "lb-blue"))) == {b.name}
        assert set(_by_phase(_svclb_pods(cl, "lb-green"))) == {c.name}
        for node in (b, c):
            assert "Hostname: web-" in cl.wait_for(lambda node=node: _curl(cl, f"http://{node.ip}:8084/").stdout,
                                                    timeout=30, what=f"curl {node.name}")
    finally:
        _cleanup_lb(cl, "lb-blue", "lb-green")


def test_node_gone_notready_leaves_the_address_list_and_pods_move(cl: Cluster, web: dict) -> None:
    """Stop node 2's agent: the node goes NotReady, its address leaves the LB, its pods are replaced."""
    c = cl.members[2]
    cl.kubectl("apply", "-f", "-", input=LB % {"name": "lb-ready", "port": 8085, "labels": ""})
    cl.kubectl("apply", "-f", "-", input=WHOAMI.replace("name: web", "name: movable").replace(
        "app: web", "app: movable").replace("nodeSelector: {kubernetes.io/hostname: %(node)s}", "") % {})
    try:
        cl.wait_for(lambda: len(_ingress(cl, "lb-ready")) == len(cl.members), timeout=60, what="all nodes serve")
        cl.wait_for(lambda: _ready_pods(cl, "app=movable"), timeout=60, what="movable pod ready")
        # put the movable pod on C: cordon the others, delete, uncordon
        for m in cl.members[:2]:
            cl.kubectl("cordon", m.name)
        cl.kubectl("delete", "pod", "-l", "app=movable", "--wait=false")
        pod = cl.wait_for(lambda: [p for p in _ready_pods(cl, "app=movable") if p["spec"]["nodeName"] == c.name
                                   and not p["metadata"].get("deletionTimestamp")], timeout=60, what="movable on C")
        for m in cl.members[:2]:
            cl.kubectl("uncordon", m.name)
        c.stop()
        cl.wait_for(lambda: c.name not in cl.ready_nodes(), timeout=60, what="node C NotReady")
        cl.wait_for(lambda: c.ip not in _ingress(cl, "lb-ready") and _ingress(cl, "lb-ready"), timeout=60,
                    what="C left the LB addresses")
        old_uid = pod[0]["metadata"]["uid"]
        cl.wait_for(lambda: [p for p in _ready_pods(cl, "app=movable") if p["metadata"]["uid"] != old_uid
                             and p["spec"]["nodeName"] != c.name], timeout=120, what="movable replaced elsewhere")
    finally:
        if not c.running():
            cl.start_agent(c)
            cl.wait_for(lambda: c.name in cl.ready_nodes(), timeout=90, what="node C back")
        cl.kubectl("delete", "deploy", "movable", "--ignore-not-found", "--wait=false")
        _cleanup_lb(cl, "lb-ready")
